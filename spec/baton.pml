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
 * The lock service, trust, the effect receiver and the property bits are in spec/common.pml, shared with the
 * bucket-lease model (spec/buckets.pml).
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

/* Lease keys. Per-task mode: one key per task, task t's key is t (spec/buckets.pml maps tasks to buckets). */
#define NK NT
#define KEY(t) (t)

/* Requests the network can hold back and deliver later (or never). */
#define N_NONE     0
#define N_CLAIM    1
#define N_COMPLETE 2
#define N_FAIL     3
#define N_RELEASE  4
#define N_EFFECT   5

#include "common.pml"

/* ------------------------------------------------------------------ state of this model */
bool fapplied[NW];     /* ghost: its current fail() applied (for the reports check) */

/* the network's one held-back request */
byte net_op;
byte net_w;
byte net_t;            /* task, or key for N_RELEASE */
byte net_f;
bool net_x;            /* retryable, for N_FAIL */

#define NET_SEND(op, w, t, f, x) net_op = op; net_w = w; net_t = t; net_f = f; net_x = x

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

#ifdef UNFENCED_COMPLETE
#define OWNED_FOR_COMPLETE(t, f) (status[t] == RUNNING)               /* no fence = $fence */
#else
#define OWNED_FOR_COMPLETE(t, f) (status[t] == RUNNING && tfence[t] == f)
#endif
#define OWNED(t, f) (status[t] == RUNNING && tfence[t] == f)

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

       try_acquire(w, k, f, r);
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
#define RENEWABLE(i) 1

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
