/*
 * What both models of baton's protocol share (spec/baton.pml, per-task leases; spec/buckets.pml, bucket
 * leases): names, the property bits, the lock service, the holder's trust window, the task table's columns,
 * the handler's effect receiver, and the clock's transitions. The including model defines NW, NT, NK and
 * MAXF first (and, for the bucket model, BUCKET_MODE and the ghosts gseq, lser[NK], wser[NW]: the order of each
 * grant across all keys, of each key's current lease, and of the lease each worker holds).
 */

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

/* ------------------------------------------------------------------ state */
/* lock service, per key */
byte fence[NK];        /* last fence granted (0: never); Consul ModifyIndex / DynamoDB fence attribute */
bool held[NK];         /* a lease on the key is valid at the server */
bool delayed[NK];      /* lock-delay after a lost (expired, not released) lease */
byte lholder[NK];      /* ghost: 1 + the worker that knows it holds the current lease; 0: nobody does */
byte maxgrant[NK];     /* ghost: highest fence ever granted */

/* task table, per task */
byte status[NT];
byte tfence[NT];       /* 0 is NULL; in bucket mode the claim token */
byte attempts[NT];
byte nterm[NT];        /* ghost: transitions into done or dead */

/* the handler's external system, per task: highest fence whose effect it applied (the effect that stands) */
byte seen[NT];

/* workers: ghosts of the lease each one holds (one at a time in both models) */
byte wk[NW];           /* its key */
byte wf[NW];           /* its fence; 0: holds none */
bool wtrust[NW];       /* its trust window is still open (TTL not yet run out on its own clock) */
bool crash[NW];        /* a crash is pending: the worker's next step is to die and restart */

byte faults = FAULTS;

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
#ifndef OFF_bucket_fenced
#define OFF_bucket_fenced 0
#endif
unsigned exactly_once : 1 = OFF_exactly_once;
unsigned one_holder : 1 = OFF_one_holder;
unsigned fences_rise : 1 = OFF_fences_rise;
unsigned attempts_bounded : 1 = OFF_attempts_bounded;
unsigned effect_fenced : 1 = OFF_effect_fenced;
unsigned reports_true : 1 = OFF_reports_true;
unsigned fence_bound : 1;
unsigned fail_report_exact : 1;
#ifdef BUCKET_MODE
unsigned bucket_fenced : 1 = OFF_bucket_fenced;
unsigned since_above : 1;
#endif

#define FAULT     (faults > 0) -> faults--
#define FAULT_NET (faults > 0 && net_op == N_NONE) -> faults--

/* Workers that trust a lease on `key`: the property one_holder says at most one. */
#define TRUSTS(i, key) (i < NW && wtrust[i] && wf[i] != 0 && wk[i] == key)
#define NTRUSTED(key) (TRUSTS(0, key) + TRUSTS(1, key) + TRUSTS(2, key) + TRUSTS(3, key))

#define FIN(i) (i >= NT || TERMINAL(status[i]))
#define all_finished (FIN(0) && FIN(1) && FIN(2) && FIN(3))

/* ------------------------------------------------------------------ planted bugs of the shared parts */
#ifdef NO_BURY
#define ABANDONED(t) (0)                                             /* runs a task past max_attempts */
#else
#define ABANDONED(t) (status[t] == RUNNING && attempts[t] >= MAXATT)
#endif

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

#ifdef GRANT_HELD
#define GRANT_OK(k) (!delayed[k] && fence[k] < MAXF)                /* grants a key whose lease is still valid */
#else
#define GRANT_OK(k) (!held[k] && !delayed[k] && fence[k] < MAXF)
#endif

#ifdef HANDOVER_SAME_FENCE
/* a key granted again keeps the fence it had: the next holder writes under its predecessor's fence */
#define NEW_FENCE(k) if :: fence[k] == 0 -> fence[k]++ :: else -> skip fi
#else
#define NEW_FENCE(k) fence[k]++
#endif

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

/* tryAcquire(key): r is R_OK with f the fence, R_NO (held, in lock-delay), or R_ERR (lost, or answer lost). */
inline try_acquire(w, k, f, r) {
  atomic {
    printf("w%d tryAcquire key%d: ", w, k);
    if
    :: FAULT -> r = R_ERR; printf("request lost\n")
    :: true ->
       if
       :: GRANT_OK(k) ->
          NEW_FENCE(k);
          held[k] = 1;
#ifdef GRANTED
          GRANTED(w, k);                     /* what the including model records (spec/semaphore.pml) */
#endif
#ifdef BUCKET_MODE
          gseq++; lser[k] = gseq;            /* ghost: grants in the order they happen, across keys */
#endif
          printf("granted fence %d", fence[k]);
          if
          :: FAULT -> lholder[k] = 0; r = R_ERR; printf(", answer lost (nobody knows it holds the key)\n")
          :: printf("\n");
             lholder[k] = w + 1; wk[w] = k; wf[w] = fence[k]; wtrust[w] = 1; f = fence[k]; r = R_OK
#ifdef BUCKET_MODE
             ; wser[w] = lser[k]
#endif
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

/* ------------------------------------------------------------------ time, renewals and faults */
#define EXPIRE(i) \
  :: atomic { i < NK && held[i] && EXPIRY_OK(i) -> \
       printf("key%d: lease fence %d expires at the server\n", i, fence[i]); held[i] = 0; LOCK_DELAY(i) }
#define UNDELAY(i) :: atomic { i < NK && delayed[i] -> delayed[i] = 0 }
/* RENEWABLE(i): the model's own condition for renewals (bucket mode: the worker has not given the lease up) */
#define RENEW(i) \
  :: atomic { i < NW && wf[i] != 0 && !wtrust[i] && RENEWABLE(i) && RENEW_OK(i) -> \
       printf("w%d renews its lease fence %d\n", i, wf[i]); wtrust[i] = 1; \
       assert(one_holder || NTRUSTED(wk[i]) <= 1) }
#define TRUST_RUNS_OUT(i) \
  :: atomic { i < NW && wtrust[i] && faults > 0 -> \
       faults--; wtrust[i] = 0; printf("w%d: its lease's TTL runs out (renewals failed, or it paused)\n", i) }
#define CRASH(i) \
  :: atomic { i < NW && !crash[i] && faults > 0 -> \
       faults--; crash[i] = 1; wtrust[i] = 0; printf("w%d crashes\n", i) }
