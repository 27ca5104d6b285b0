/*
 * baton's exactly-once protocol, per-task lease mode: a Promela model for SPIN.
 *
 * What it models (docs/verification.md has the long form and the model-to-code table):
 *   - a lock service: per key, a grant with a fence that only rises, owner-checked release, expiry that
 *     may happen at any moment after the holder's own trust window ended, lock-delay after a loss;
 *   - the holder's trust window (KeepAlive: trusted until TTL after the start of its last good renewal)
 *     as a ghost bit that time may clear at any moment (a fault: renewals failed, or the process paused);
 *   - workers that pick tasks from a stale list, tryAcquire, claim, run a handler, write the outcome
 *     (retried after transport errors, with the lost-reply re-read), release; that may crash at any step
 *     and come back, pause for any length (any interleaving), and act on a lease they no longer hold;
 *   - the task table with the fenced claim, complete and fail of source-postgres/src/statements.ts;
 *   - a handler's external effect whose receiver rejects a fence lower than the highest it has seen;
 *   - a network that loses requests and answers, and delays or duplicates one request at a time.
 *
 * Sizes and planted bugs are -D switches (spec/verify.mjs runs them): NW workers, NT tasks, MAXATT
 * attempts per task, FAULTS faults in total (crashes, lost trust, lost/delayed/duplicated messages).
 *
 * Properties: assertions named after the property they check (`assert(<name> || <condition>)`, where
 * <name> is a bit that is always 0, so a failing assertion prints its name), and one LTL formula,
 * `finished`, checked under weak fairness.
 */

/* ------------------------------------------------------------------ sizes */
#ifndef NW
#define NW 2            /* workers (at most 4) */
#endif
#ifndef NT
#define NT 1            /* tasks (at most 4) */
#endif
#ifndef MAXATT
#define MAXATT 2        /* max_attempts of every task */
#endif
#ifndef FAULTS
#define FAULTS 2        /* budget of faults over the whole run */
#endif
#ifndef MAXF
#define MAXF 15         /* fence bound of the model; the fence_bound check shows it is never reached */
#endif

/*
 * Lease keys. Per-task mode: one key per task, task t's key is t. A per-bucket mode would define fewer keys
 * and map a task to its bucket's key here; everything below goes through KEY() and NK.
 */
#define NK NT
#define KEY(t) (t)

/* ------------------------------------------------------------------ names */
#define PENDING 0
#define RUNNING 1
#define FAILED  2
#define DONE    3
#define DEAD    4
#define TERMINAL(s) ((s) >= DONE)
#define RUNNABLE(s) ((s) <= FAILED)      /* status IN ('pending', 'running', 'failed') */

/* What a request's caller learns. */
#define R_ERR 0   /* transport error: applied or not, the caller cannot tell */
#define R_NO  1   /* refused (lock held, claim refused, stale write, effect rejected) */
#define R_OK  2

/* Requests the network can hold back and deliver later (or never). */
#define N_NONE     0
#define N_CLAIM    1
#define N_COMPLETE 2
#define N_FAIL     3
#define N_RELEASE  4
#define N_EFFECT   5

/* ------------------------------------------------------------------ state */
/* lock service, per key */
byte fence[NK];        /* last fence granted (0: never); Consul ModifyIndex / DynamoDB fence attribute */
bool held[NK];         /* a lease on the key is valid at the server */
bool delayed[NK];      /* lock-delay after a lost (expired, not released) lease */
byte lholder[NK];      /* ghost: 1 + the worker that knows it holds the current lease; 0: nobody does */
byte maxgrant[NK];     /* ghost: highest fence ever granted */

/* task table, per task */
byte status[NT];
byte tfence[NT];       /* 0 is NULL */
byte attempts[NT];
byte nterm[NT];        /* ghost: transitions into done or dead */

/* the handler's external system, per task: highest fence whose effect it applied (the effect that stands) */
byte seen[NT];

/* workers: ghosts of the lease each one holds (a worker runs one task at a time in the model) */
byte wk[NW];           /* its key */
byte wf[NW];           /* its fence; 0: holds none */
bool wtrust[NW];       /* its trust window is still open (TTL not yet run out on its own clock) */
bool crash[NW];        /* a crash is pending: the worker's next step is to die and restart */
bool fapplied[NW];     /* ghost: its current fail() applied (for the reports check) */

byte faults = FAULTS;

/* the network's one held-back request */
byte net_op;
byte net_w;
byte net_t;            /* task, or key for N_RELEASE */
byte net_f;
bool net_x;            /* retryable, for N_FAIL */

/*
 * Property names: constant bits, 0 unless -DOFF_<name>=1 turns that property off, so that a failing
 * `assert(<name> || <condition>)` prints the property's name.
 */
#ifndef OFF_exactly_once
#define OFF_exactly_once 0
#endif
#ifndef OFF_one_holder
#define OFF_one_holder 0
#endif
#ifndef OFF_fences_rise
#define OFF_fences_rise 0
#endif
#ifndef OFF_attempts_bounded
#define OFF_attempts_bounded 0
#endif
#ifndef OFF_effect_fenced
#define OFF_effect_fenced 0
#endif
#ifndef OFF_reports_true
#define OFF_reports_true 0
#endif
unsigned exactly_once : 1 = OFF_exactly_once;
unsigned one_holder : 1 = OFF_one_holder;
unsigned fences_rise : 1 = OFF_fences_rise;
unsigned attempts_bounded : 1 = OFF_attempts_bounded;
unsigned effect_fenced : 1 = OFF_effect_fenced;
unsigned reports_true : 1 = OFF_reports_true;
unsigned fence_bound : 1;
unsigned fail_report_exact : 1;

#define FAULT     (faults > 0) -> faults--
#define FAULT_NET (faults > 0 && net_op == N_NONE) -> faults--
#define NET_SEND(op, w, t, f, x) net_op = op; net_w = w; net_t = t; net_f = f; net_x = x

/* Workers that trust a lease on `key`: the property one_holder says at most one. */
#define TRUSTS(i, key) (i < NW && wtrust[i] && wf[i] != 0 && wk[i] == key)
#define NTRUSTED(key) (TRUSTS(0, key) + TRUSTS(1, key) + TRUSTS(2, key) + TRUSTS(3, key))

#define FIN(i) (i >= NT || TERMINAL(status[i]))
#define all_finished (FIN(0) && FIN(1) && FIN(2) && FIN(3))

/* ------------------------------------------------------------------ planted bugs (guards) */
#if defined(CLAIM_LE)
#define CLAIM_FENCE_OK(t, f) (tfence[t] == 0 || tfence[t] <= f)       /* accepts an equal fence */
#elif defined(CLAIM_REVERSED)
#define CLAIM_FENCE_OK(t, f) (tfence[t] == 0 || tfence[t] > f)        /* comparison the wrong way round */
#else
#define CLAIM_FENCE_OK(t, f) (tfence[t] == 0 || tfence[t] < f)        /* fence IS NULL OR fence < $fence */
#endif

#ifdef CLAIM_ANY_STATUS
#define CLAIM_STATUS_OK(t) (1)                                       /* no status IN (runnable) */
#else
#define CLAIM_STATUS_OK(t) (RUNNABLE(status[t]))
#endif

#ifdef NO_BURY
#define ABANDONED(t) (0)                                             /* runs a task past max_attempts */
#else
#define ABANDONED(t) (status[t] == RUNNING && attempts[t] >= MAXATT)
#endif

#ifdef UNFENCED_COMPLETE
#define OWNED_FOR_COMPLETE(t, f) (status[t] == RUNNING)               /* no fence = $fence */
#else
#define OWNED_FOR_COMPLETE(t, f) (status[t] == RUNNING && tfence[t] == f)
#endif
#define OWNED(t, f) (status[t] == RUNNING && tfence[t] == f)

#if defined(UNFENCED_EFFECT)
#define EFFECT_APPLIES(t, f) (1)                                     /* receiver ignores the fence */
#elif defined(EFFECT_GE)
#define EFFECT_APPLIES(t, f) (f >= seen[t])                          /* re-applies an equal fence */
#else
#define EFFECT_APPLIES(t, f) (f > seen[t])
#endif

#ifdef EXPIRE_EARLY
#define EXPIRY_OK(k) (1)                                             /* server frees a lease its holder trusts */
#else
#define EXPIRY_OK(k) (lholder[k] == 0 || !wtrust[lholder[k] - 1])
#endif

#ifdef RENEW_AFTER_EXPIRY
#define RENEW_OK(i) (1)                                              /* renewal answer not checked */
#else
#define RENEW_OK(i) (held[wk[i]] && fence[wk[i]] == wf[i])
#endif

#ifdef NO_LOCK_DELAY
#define LOCK_DELAY(k) skip
#else
#define LOCK_DELAY(k) delayed[k] = 1
#endif

#define GRANT_OK(k) (!held[k] && !delayed[k] && fence[k] < MAXF)

/* ------------------------------------------------------------------ lock service */
inline server_release(k, f) {
#ifdef RELEASE_NO_OWNER
  held[k] = 0
#else
  if
  :: held[k] && fence[k] == f -> held[k] = 0          /* conditional on owner + acquisition */
  :: else -> skip
  fi
#endif
#ifdef FENCE_RESET
  ; if :: !held[k] -> fence[k] = 0 :: else -> skip fi   /* key deleted, counter restarts */
#endif
}

/* The worker drops its lease (released, given up, or crashed): nobody relies on it any more. */
inline forget_lease(w) {
  if
  :: wf[w] != 0 && lholder[wk[w]] == w + 1 && fence[wk[w]] == wf[w] -> lholder[wk[w]] = 0
  :: else -> skip
  fi;
  wf[w] = 0; wk[w] = 0; wtrust[w] = 0
}

/* ------------------------------------------------------------------ task table */
/* claim: source-postgres statements.ts `claim` (and MemoryTaskSource.claim). res: R_OK claimed, R_NO refused. */
inline db_claim(t, f, res) {
  if
  :: CLAIM_STATUS_OK(t) && CLAIM_FENCE_OK(t, f) ->
     assert(fences_rise || f > tfence[t]);
     assert(exactly_once || !TERMINAL(status[t]));
     tfence[t] = f;
     if
     :: ABANDONED(t) ->                  /* its worker vanished during the final attempt: bury it */
        status[t] = DEAD; nterm[t]++; res = R_NO
     :: else ->
        status[t] = RUNNING; attempts[t]++; res = R_OK
     fi;
     assert(exactly_once || nterm[t] <= 1);
     assert(attempts_bounded || attempts[t] <= MAXATT)
  :: else -> res = R_NO
  fi
}

/* complete: WHERE id = $1 AND fence = $2 AND status = 'running' */
inline db_complete(t, f, res) {
  if
  :: OWNED_FOR_COMPLETE(t, f) ->
     assert(exactly_once || OWNED(t, f));               /* the outcome is the current claim's */
     assert(effect_fenced || seen[t] == f);             /* and the effect that stands is that claim's */
     status[t] = DONE; nterm[t]++;
     assert(exactly_once || nterm[t] == 1);
     res = R_OK
  :: else -> res = R_NO
  fi
}

/* fail: WHERE id = $1 AND fence = $2 AND status = 'running'; failed while attempts remain, else dead */
inline db_fail(t, f, retryable, res) {
  if
  :: OWNED(t, f) ->
     if
     :: retryable && attempts[t] < MAXATT -> status[t] = FAILED
     :: else -> status[t] = DEAD; nterm[t]++
     fi;
     assert(exactly_once || nterm[t] <= 1);
     res = R_OK
  :: else -> res = R_NO
  fi
}

/* ------------------------------------------------------------------ the handler's external system */
inline rx_effect(t, f, res) {
  if
  :: EFFECT_APPLIES(t, f) ->
     /* never twice for one fence, never below a fence already applied, only from a fence that claimed
        the task, and never another fence's once the task is done */
     assert(effect_fenced || (f > seen[t] && f <= tfence[t] && !(status[t] == DONE && tfence[t] != f)));
     seen[t] = f; res = R_OK
  :: else ->
     if
     :: f == seen[t] -> res = R_OK                      /* already applied: idempotent answer */
     :: else -> res = R_NO                              /* a newer fence was seen: rejected */
     fi
  fi
}

/* ------------------------------------------------------------------ workers */
#define PICK(i) :: (i < NT && !TERMINAL(status[i])) -> t = i

/* After a request was applied: its answer arrives, is lost, or the request is also delivered again later. */
#define ANSWER(op, x) \
  if \
  :: printf("\n") \
  :: FAULT -> r = R_ERR; printf(", answer lost\n") \
  :: FAULT_NET -> NET_SEND(op, w, t, f, x); printf(", and the request is duplicated in the network\n") \
  fi

active [NW] proctype Worker() {
  byte w = _pid;       /* Worker is declared first: pids 0 .. NW-1 */
  byte t, k, f, r;
  bit outcome, retryable, retried;

end_pick:
  do
  :: {
       /* due(): a task the source lists as unfinished; the list is stale by the time it is used */
       if
       PICK(0) PICK(1) PICK(2) PICK(3)
       fi;
       k = KEY(t);

       /* tryAcquire(key) */
       atomic {
         printf("w%d tryAcquire key%d: ", w, k);
         if
         :: FAULT -> r = R_ERR; printf("request lost\n")
         :: true ->
            if
            :: GRANT_OK(k) ->
               fence[k]++;
               held[k] = 1;
               printf("granted fence %d", fence[k]);
               if
               :: FAULT -> lholder[k] = 0; r = R_ERR; printf(", answer lost (nobody knows it holds the key)\n")
               :: printf("\n");
                  lholder[k] = w + 1; wk[w] = k; wf[w] = fence[k]; wtrust[w] = 1; f = fence[k]; r = R_OK
               fi;
               assert(fences_rise || fence[k] > maxgrant[k]);
               maxgrant[k] = fence[k];
               assert(one_holder || NTRUSTED(k) <= 1)
            :: else ->
#ifndef NOBOUNDCHECK
               assert(fence_bound || fence[k] < MAXF);
#endif
               r = R_NO;
               if
               :: fence[k] >= MAXF -> printf("refused: the model's fence bound MAXF is reached\n")
               :: else -> printf("held or in lock-delay (null)\n")
               fi
            fi
         fi
       }
       if
       :: r != R_OK -> goto next                        /* null: skipped-locked; error: the pass fails */
       :: else -> skip
       fi;

       /* claim(task, fence) */
       atomic {
         printf("w%d claim task%d fence %d: ", w, t, f);
         if
         :: FAULT -> r = R_ERR; printf("request lost\n")
         :: FAULT_NET -> NET_SEND(N_CLAIM, w, t, f, 0); r = R_ERR; printf("delayed in the network\n")
         :: true ->
            db_claim(t, f, r);
            if :: r == R_OK -> printf("claimed") :: else -> printf("refused") fi;
            ANSWER(N_CLAIM, 0)
         fi
       }
       if
#ifdef RUN_UNCLAIMED
       :: r == R_ERR -> goto handler                    /* treats an unknown claim as claimed */
#endif
       :: r != R_OK -> goto release                     /* refused or unknown: release, move on */
       :: else -> skip
       fi;

handler:
       /* the handler: its fenced effect, then it returns or throws */
       if
       :: atomic {
            printf("w%d handler: effect task%d fence %d: ", w, t, f);
            if
            :: FAULT -> r = R_ERR; printf("request lost\n")
            :: FAULT_NET -> NET_SEND(N_EFFECT, w, t, f, 0); r = R_ERR   /* or left by an abandoned handler */
               ; printf("delayed in the network (or the handler was abandoned)\n")
            :: true ->
               rx_effect(t, f, r);
               if :: r == R_OK -> printf("applied") :: else -> printf("rejected") fi;
               ANSWER(N_EFFECT, 0)
            fi;
            outcome = (r == R_OK); retryable = 1
          }
       :: atomic { outcome = 0; retryable = 1; printf("w%d handler throws\n", w) }   /* before its effect */
       :: atomic { outcome = 0; retryable = 0; printf("w%d handler throws TASK_INVALID\n", w) }
       fi;

       /* complete(task, fence, result) or fail(task, fence, error), retried through transport errors */
       retried = 0; fapplied[w] = 0;
write:
       atomic {
         if
         :: outcome -> printf("w%d complete task%d fence %d: ", w, t, f)
         :: else -> printf("w%d fail task%d fence %d (retryable %d): ", w, t, f, retryable)
         fi;
         if
         :: FAULT -> r = R_ERR; printf("request lost\n")
         :: FAULT_NET -> NET_SEND((outcome -> N_COMPLETE : N_FAIL), w, t, f, retryable); r = R_ERR
            ; printf("delayed in the network\n")
         :: true ->
            if
            :: outcome -> db_complete(t, f, r)
            :: else -> db_fail(t, f, retryable, r); fapplied[w] = fapplied[w] || r == R_OK
            fi;
            if :: r == R_OK -> printf("applied") :: else -> printf("stale") fi;
            ANSWER((outcome -> N_COMPLETE : N_FAIL), retryable)
         fi
       }
       if
       :: r == R_ERR ->
          if
          :: retried = 1; printf("w%d retries the write\n", w); goto write   /* after a backoff */
          :: printf("w%d gives up the write (writeRetryMs)\n", w); goto release
          fi
#ifndef NO_REREAD
       :: r == R_NO && retried ->
          /* a retry after a lost reply finds its own earlier write: my fence, and done (or failed/dead) */
          atomic {
            printf("w%d re-reads task%d: ", w, t);
            if
            :: FAULT -> r = R_ERR; printf("request lost\n")
            :: true ->
               printf("status %d fence %d\n", status[t], tfence[t]);
               if
#ifdef REREAD_ANY_FENCE
               :: outcome && status[t] == DONE -> r = R_OK
#else
               :: outcome && tfence[t] == f && status[t] == DONE -> r = R_OK
#endif
               :: !outcome && tfence[t] == f && (status[t] == FAILED || status[t] == DEAD) -> r = R_OK
               :: else -> skip
               fi
            fi
          }
          if
          :: r == R_ERR ->
             if
             :: printf("w%d retries the write\n", w); goto write
             :: printf("w%d gives up the write (writeRetryMs)\n", w); goto release
             fi
          :: else -> skip
          fi
#endif
       :: else -> skip
       fi;

       /* what the worker reports: task-completed / task-failed / task-dead, or stale-write */
       atomic {
         if
         :: r == R_OK && outcome -> printf("w%d reports task-completed\n", w)
         :: r == R_OK && !outcome -> printf("w%d reports task-failed or task-dead\n", w)
         :: else -> printf("w%d reports stale-write\n", w)
         fi;
         if
         :: r == R_OK && outcome -> assert(reports_true || (status[t] == DONE && tfence[t] == f))
         :: r == R_NO && outcome -> assert(reports_true || !(status[t] == DONE && tfence[t] == f))
         :: r == R_OK && !outcome -> assert(reports_true || fapplied[w])
         :: r == R_NO && !outcome ->
#ifdef CHECK_FAIL_REPORT
            assert(fail_report_exact || !fapplied[w])
#else
            skip
#endif
         fi;
         fapplied[w] = 0
       }

release:
       /* lease.release() */
       atomic {
         printf("w%d release key%d fence %d: ", w, k, f);
         if
         :: FAULT -> printf("request lost (Consul retries it later, DynamoDB lets it expire)\n")
         :: FAULT_NET -> NET_SEND(N_RELEASE, w, k, f, 0); printf("delayed in the network\n")
         :: true -> printf("sent\n"); server_release(k, f)
         fi;
         forget_lease(w)
       }
next:
       atomic { t = 0; k = 0; f = 0; r = 0; outcome = 0; retryable = 0; retried = 0 }
     } unless {
       atomic {
         crash[w] -> crash[w] = 0;
         printf("w%d restarts after its crash\n", w);
         forget_lease(w); fapplied[w] = 0;
         t = 0; k = 0; f = 0; r = 0; outcome = 0; retryable = 0; retried = 0
       }
     }
  od
}

/* ------------------------------------------------------------------ time, renewals and faults */
#define EXPIRE(i) \
  :: atomic { i < NK && held[i] && EXPIRY_OK(i) -> \
       printf("key%d: lease fence %d expires at the server\n", i, fence[i]); held[i] = 0; LOCK_DELAY(i) }
#define UNDELAY(i) :: atomic { i < NK && delayed[i] -> delayed[i] = 0 }
#define RENEW(i) \
  :: atomic { i < NW && wf[i] != 0 && !wtrust[i] && RENEW_OK(i) -> \
       printf("w%d renews its lease fence %d\n", i, wf[i]); wtrust[i] = 1; \
       assert(one_holder || NTRUSTED(wk[i]) <= 1) }
#define TRUST_RUNS_OUT(i) \
  :: atomic { i < NW && wtrust[i] && faults > 0 -> \
       faults--; wtrust[i] = 0; printf("w%d: its lease's TTL runs out (renewals failed, or it paused)\n", i) }
#define CRASH(i) \
  :: atomic { i < NW && !crash[i] && faults > 0 -> \
       faults--; crash[i] = 1; wtrust[i] = 0; printf("w%d crashes\n", i) }

active proctype Clock() {
end_clock:
  do
  EXPIRE(0) EXPIRE(1) EXPIRE(2) EXPIRE(3)
  UNDELAY(0) UNDELAY(1) UNDELAY(2) UNDELAY(3)
  RENEW(0) RENEW(1) RENEW(2) RENEW(3)
  TRUST_RUNS_OUT(0) TRUST_RUNS_OUT(1) TRUST_RUNS_OUT(2) TRUST_RUNS_OUT(3)
  CRASH(0) CRASH(1) CRASH(2) CRASH(3)
  od
}

/* ------------------------------------------------------------------ the network */
active proctype Network() {
  byte scratch;
end_net:
  do
  :: atomic {
       net_op != N_NONE ->
       printf("network delivers w%d's delayed ", net_w);
       if
       :: net_op == N_CLAIM ->
          printf("claim task%d fence %d: ", net_t, net_f);
          db_claim(net_t, net_f, scratch);
          if :: scratch == R_OK -> printf("claimed\n") :: else -> printf("refused\n") fi
       :: net_op == N_COMPLETE ->
          printf("complete task%d fence %d: ", net_t, net_f);
          db_complete(net_t, net_f, scratch);
          if :: scratch == R_OK -> printf("applied\n") :: else -> printf("stale\n") fi
       :: net_op == N_FAIL ->
          printf("fail task%d fence %d: ", net_t, net_f);
          db_fail(net_t, net_f, net_x, scratch);
          if :: scratch == R_OK -> printf("applied\n") :: else -> printf("stale\n") fi;
          if
          :: scratch == R_OK && wf[net_w] == net_f && wk[net_w] == KEY(net_t) -> fapplied[net_w] = 1
          :: else -> skip
          fi
       :: net_op == N_RELEASE ->
          printf("release key%d fence %d\n", net_t, net_f);
          server_release(net_t, net_f)
       :: net_op == N_EFFECT ->
          printf("effect task%d fence %d: ", net_t, net_f);
          rx_effect(net_t, net_f, scratch);
          if :: scratch == R_OK -> printf("applied or already applied\n") :: else -> printf("rejected\n") fi
       fi;
       net_op = N_NONE; net_w = 0; net_t = 0; net_f = 0; net_x = 0; scratch = 0
     }
  :: atomic {
       net_op != N_NONE -> net_op = N_NONE; net_w = 0; net_t = 0; net_f = 0; net_x = 0
     }
  od
}

/* ------------------------------------------------------------------ liveness */
/* Every task ends done or dead (checked with weak fairness; faults are bounded by FAULTS). */
ltl finished { <> all_finished }
