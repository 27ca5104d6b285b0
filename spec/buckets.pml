/*
 * baton's exactly-once protocol, bucket lease mode: a Promela model for SPIN.
 *
 * A worker leases a bucket (a range of shards) with a lock whose fence stamps every claim and settle of that
 * bucket's tasks, claims a batch of due tasks in one statement, runs their handlers (each with its claim
 * token as fence), writes their outcomes in batches, and hands the bucket back (rebalance, stop) or loses it
 * (expiry, pause, crash). docs/verification.md ("The bucket model") has the long form and the model-to-code
 * table. The lock service, trust, faults, the effect receiver and the property bits are spec/common.pml's,
 * shared with the per-task model (spec/baton.pml).
 *
 * What the source does (packages/source-postgres/src/statements.ts `claimBucket`, `settle`; the memory
 * source the same in TypeScript):
 *   - a record per bucket (`bucket_leases`: lock_fence, since_token) locked by every claim and share-locked by
 *     every settle;
 *   - claimBucket(bucket, F): refused (`layout`) unless the table runs bucket mode with the worker's bucket
 *     count; refused (`stale`) if the record holds a fence above F; a fence above the record's starts a new
 *     lease of the bucket: since = nextval(claim_token_seq); then ONE token = nextval for the statement, and
 *     up to `limit` tasks of the bucket that are pending/failed, running under an earlier lease (token <
 *     since), or running under this lease but claimed longer than reclaimAfterMs ago, become running with
 *     that token, attempts + 1 (a running task in its final attempt is buried: dead);
 *   - settle(bucket, F, [task, token, kind]): refused as a whole unless the layout matches and the record
 *     still holds exactly F; each settlement applies only to a task still running with exactly its token:
 *     complete -> done; fail -> failed while attempts remain and retryable, else dead; release (an unrun
 *     claim given back) -> pending, attempts - 1.
 * What the worker does (packages/core/src/worker/bucket-mode/dispatcher.ts, settle-batcher.ts): take a free
 * bucket, claim while it may hold due tasks, run, settle in batches (retried through transport errors; a
 * retry's refusals, one by one or of the whole batch, are read back: the task showing this claim's token and
 * the intended status was written by the lost attempt), hand back (queued claims released, outcomes written,
 * then the lease released), or lose it (a refused claim, or its lease's signal) and drop its queue.
 *
 * Sizes and planted bugs are -D switches (spec/checks.mjs): NW workers, NT tasks, NB buckets (tasks spread
 * round-robin: task t in bucket t % NB), LIMIT tasks per claim at most, MAXATT attempts, FAULTS faults in all, HANDOVERS hand-backs in all.
 * MIXED: the last worker runs with 2 buckets while the table (and the others) run with NB = 1.
 */

/* ------------------------------------------------------------------ sizes */
#ifndef NW
#define NW 2            /* workers (at most 4) */
#endif
#ifndef NT
#define NT 2            /* tasks (at most 2) */
#endif
#ifndef NB
#define NB 1            /* buckets of the table's layout (1 or 2) */
#endif
#ifndef MAXATT
#define MAXATT 2
#endif
#ifndef FAULTS
#define FAULTS 2
#endif
#ifndef HANDOVERS
#define HANDOVERS 1     /* hand-backs (rebalance or stop) over the whole run */
#endif
#ifndef LIMIT
#define LIMIT NT        /* most tasks one claim takes (batchSize, or fewer free handler slots) */
#endif
#ifndef MAXF
#define MAXF 15         /* fence bound of the lock service */
#endif
#ifndef MAXTOK
#define MAXTOK 40       /* bound of the claim token sequence; fence_bound shows it is never reached */
#endif

#define BUCKET_MODE 1

/* Buckets and keys. A worker's bucket count is the table's, except the mixed worker's (2). Keys: bucket b of
   the table's count is key b; bucket b of the mixed count is key NB + b (another lock key: another counter). */
#ifdef MIXED
#define MIXEDW(w) ((w) == NW - 1)
#define NK (NB + 2)
#define NR 2            /* bucket records, by bucket number (the record's key has no bucket count) */
#else
#define MIXEDW(w) (0)
#define NK NB
#define NR NB
#endif
#define WNB(w) (MIXEDW(w) -> 2 : NB)
#define KEYOF(w, b) (MIXEDW(w) -> NB + (b) : (b))
#define INB(w, t, b) ((t) < NT && ((t) % WNB(w)) == (b))
#define LAYOUT_OK(w) (!MIXEDW(w))

/* ghosts of grants (spec/common.pml sets them): grant order across keys, each key's lease, each worker's */
byte gseq;
byte lser[NK];
byte wser[NW];

/* Requests the network can hold back and deliver later (or never). */
#define N_NONE   0
#define N_CLAIM  1
#define N_SETTLE 2
#define N_RELEASE 3
#define N_EFFECT 4

#include "common.pml"

/* answers beyond common.pml's */
#define R_LAYOUT 3

/* settlement kinds */
#define K_NONE 0
#define K_C    1        /* complete */
#define K_FR   2        /* fail, retryable */
#define K_FX   3        /* fail, not retryable (TASK_INVALID) */
#define K_RL   4        /* release an unrun claim */

/* a worker's task: nothing, claimed and queued, outcome waiting for a batch, in the batch being written */
#define Q_NONE  0
#define Q_QUEUED 1
#define Q_OUT   2
#define Q_BATCH 3

/* a batch member's result */
#define S_NONE 0
#define S_APPLIED 1
#define S_REFUSED 2
#define S_UNKNOWN 3     /* confirm: the task was claimed again before the read-back */
#define S_GAVEUP 4

/* worker phases */
#define W_IDLE 0
#define W_ACTIVE 1
#define W_RELEASING 2
#define W_LOST 3
#define W_STOPPED 4

/* ------------------------------------------------------------------ state of this model */
byte rec_f[NR];        /* bucket_leases.lock_fence (0: no row) */
byte rec_s[NR];        /* bucket_leases.since_token */
byte tokseq;           /* claim_token_seq's last value */
byte tnew[NT];         /* ghost: grant order of the newest lease whose claim wrote a bucket holding the task */
bit sapp[8];
byte wtok[8];          /* w * NT + t: the token of the worker's claim of the task (0: none) */
#define TK(i) wtok[w * NT + (i)]           /* ghost, w * NT + t: the worker's current settlement of the task applied */
byte handovers = HANDOVERS;

#ifdef TOKEN_IS_LOCK_FENCE
byte cseq;             /* ghost: claim statements, in order */
byte tcid[NT];         /* ghost: the claim statement the task runs under */
#define TCID(t) tcid[t]
#else
#define TCID(t) tfence[t]   /* tokens are unique per claim statement: the token identifies the claim */
#endif

/* the network's one held-back request */
byte net_op, net_w, net_b, net_f, net_s;
byte net_kd[NT];       /* N_SETTLE: kind per task (K_NONE: not in the batch) */
byte net_tk[NT];       /* N_SETTLE: token per task; N_EFFECT: net_tk[0] is the fence, net_b the task */
#ifdef TOKEN_IS_LOCK_FENCE
byte net_cid[NT];
#define NET_CLEAR_CID ; net_cid[0] = 0; net_cid[1 % NT] = 0
#else
#define NET_CLEAR_CID
#endif
#define NET_CLEAR \
  net_op = N_NONE; net_w = 0; net_b = 0; net_f = 0; net_s = 0; \
  net_kd[0] = 0; net_kd[1 % NT] = 0; net_tk[0] = 0; net_tk[1 % NT] = 0 NET_CLEAR_CID

/* ------------------------------------------------------------------ planted bugs (guards) */
#ifdef CLAIM_NO_LAYOUT
#define CLAIM_LAYOUT_OK(w) (1)                     /* claim without the lease_layout condition */
#else
#define CLAIM_LAYOUT_OK(w) LAYOUT_OK(w)
#endif
#ifdef CLAIM_NO_RECORD
#define CLAIM_RECORD_OK(b, f) (1)                  /* upsert without WHERE b.lock_fence <= EXCLUDED.lock_fence */
#else
#define CLAIM_RECORD_OK(b, f) (rec_f[b] <= (f))
#endif
#ifdef SETTLE_NO_RECORD
#define SETTLE_RECORD_OK(b, f) (1)                 /* settle without b.lock_fence = $4 */
#else
#define SETTLE_RECORD_OK(b, f) (rec_f[b] == (f))
#endif
#ifdef SETTLE_ANY_TOKEN
#define SETTLE_OWNED(t, tk) (status[t] == RUNNING)  /* settle without t.fence = i.token */
#else
#define SETTLE_OWNED(t, tk) (status[t] == RUNNING && tfence[t] == (tk))
#endif
#ifdef CONFIRM_ANY_TOKEN
#define CONFIRM_OWN(t, tk) (1)                     /* read-back takes the status without comparing the token */
#else
#define CONFIRM_OWN(t, tk) (tfence[t] == (tk))
#endif

/* ------------------------------------------------------------------ the source's statements */
/* Is task t claimable by a claim of worker w? Due (pending or failed), or running under an earlier lease of
   the bucket (token below since_token), or running under this lease but claimed longer than reclaimAfterMs
   ago. `mine`: the task is in the claiming worker's own bookkeeping (queued, running, settling). The model
   lets a worker's claim take every task it does not work on itself (for one running under its own lease: its
   claim's reply was lost or its write given up, and the age has passed), and a claim held back in the network
   any runnable task (also one its worker still runs: a reclaim while the handler runs). */
#define CLAIMABLE(w, t, b, mine) (INB(w, t, b) && RUNNABLE(status[t]) && !(mine))

/* claimBucket, one task (in shard order, up to the limit). */
inline claim_task(w, t, b, tk, lim, n, cm, mine) {
  if
  :: n < lim && CLAIMABLE(w, t, b, mine) ->
     assert(fences_rise || tk > tfence[t]);
     assert(exactly_once || !TERMINAL(status[t]));
     tfence[t] = tk;
#ifdef TOKEN_IS_LOCK_FENCE
     tcid[t] = cseq;
#endif
     n++;
     if
     :: ABANDONED(t) -> status[t] = DEAD; nterm[t]++      /* final attempt abandoned: buried */
     :: else -> status[t] = RUNNING; attempts[t]++; cm = cm | (1 << t)
     fi;
     assert(exactly_once || nterm[t] <= 1);
     assert(attempts_bounded || attempts[t] <= MAXATT)
  :: else -> skip
  fi
}

/* The new lease's since_token: above every token a task of the bucket carries. */
inline draw_since(w, b, ps) {
#ifdef TOKEN_BEFORE_LOCK
  rec_s[b] = ps;                                         /* drawn before the record was locked */
#elif defined(TOKEN_IS_LOCK_FENCE)
  rec_s[b] = rec_f[b];
#else
  tokseq++; rec_s[b] = tokseq;
#endif
  assert(since_above || !INB(w, 0, b) || tfence[0] < rec_s[b]);
  assert(since_above || !INB(w, 1, b) || tfence[1] < rec_s[b])
}

/* bucket_fenced: no write to a task from a lease older (in grant order) than one whose claim already wrote
   a bucket holding it. A claim writes its bucket's record: it is then the newest for the bucket's tasks. */
#define FENCED_CLAIM(w, t, b, s) \
  if :: INB(w, t, b) -> assert(bucket_fenced || (s) >= tnew[t]); tnew[t] = (s) :: else -> skip fi

/* claimBucket(lease (b, f) of grant order s, limit lim): res R_OK with the token tk and the claimed tasks cm,
   R_NO (stale), R_LAYOUT. ps/pt: since and token drawn before the statement (TOKEN_BEFORE_LOCK only). */
inline db_claim(w, b, f, s, lim, ps, pt, mine0, mine1, res, tk, cm) {
  cm = 0;
  if
  :: !CLAIM_LAYOUT_OK(w) -> res = R_LAYOUT
  :: CLAIM_LAYOUT_OK(w) && !CLAIM_RECORD_OK(b, f) -> res = R_NO
  :: CLAIM_LAYOUT_OK(w) && CLAIM_RECORD_OK(b, f) ->
     assert(fence_bound || tokseq + 2 < MAXTOK);
     if
     :: rec_f[b] < f -> rec_f[b] = f; draw_since(w, b, ps)
     :: else -> rec_f[b] = f                          /* equal; CLAIM_NO_RECORD: also lowers it */
     fi;
#ifdef TOKEN_BEFORE_LOCK
     tk = pt;
#elif defined(TOKEN_IS_LOCK_FENCE)
     tk = f; cseq++;
#else
     tokseq++; tk = tokseq;
#endif
     FENCED_CLAIM(w, 0, b, s);
     FENCED_CLAIM(w, 1, b, s);
     n = 0;
     claim_task(w, 0, b, tk, lim, n, cm, mine0);
     claim_task(w, 1, b, tk, lim, n, cm, mine1);
     n = 0;
     res = R_OK
  fi
}

/* settle, one settlement: applies only to the task still running with exactly its token. */
inline settle_task(w, t, b, s, kind, tk, cid, ok) {
  if
  :: kind != K_NONE && INB(w, t, b) && SETTLE_OWNED(t, tk) ->
     assert(exactly_once || (tfence[t] == tk && TCID(t) == cid));   /* the outcome is the current claim's */
     assert(bucket_fenced || s >= tnew[t]);
     if
     :: kind == K_C ->
        assert(effect_fenced || seen[t] == tk);                     /* the effect that stands is this claim's */
        status[t] = DONE; nterm[t]++
     :: kind == K_FR && attempts[t] < MAXATT -> status[t] = FAILED
     :: (kind == K_FR && attempts[t] >= MAXATT) || kind == K_FX -> status[t] = DEAD; nterm[t]++
     :: kind == K_RL ->
        status[t] = PENDING;
        if :: attempts[t] > 0 -> attempts[t]-- :: else -> skip fi
     fi;
     assert(exactly_once || nterm[t] <= 1);
     ok = 1
  :: else -> ok = 0
  fi
}

/* ------------------------------------------------------------------ workers */
#define SETTLING(i) (q[i] == Q_OUT || q[i] == Q_BATCH)
#define MINE(i) (q[i] != Q_NONE)
#define RESET_TASK(i) q[i] = Q_NONE; TK(i) = 0; kd[i] = K_NONE; rs[i] = S_NONE; sapp[w * NT + i] = 0

/* the answer of a request that applied: arrives, is lost, or the request is also delivered again later */
#define ANSWER(op) \
  if \
  :: printf("\n") \
  :: FAULT -> r = R_ERR; printf(", answer lost\n") \
  :: FAULT_NET -> NET_COPY(op); printf(", and the request is duplicated in the network\n") \
  fi

#ifdef TOKEN_IS_LOCK_FENCE
#define NET_CID net_cid[0] = cid[0]; net_cid[1 % NT] = cid[1 % NT];
#else
#define NET_CID
#endif
/* The network's copy of this worker's request (the settle's batch: the tasks in state Q_BATCH). */
#define NET_COPY(op) \
  net_op = op; net_w = w; net_b = b; net_f = f; net_s = s; \
  if :: op == N_SETTLE -> \
       net_kd[0] = (q[0] == Q_BATCH -> kd[0] : K_NONE); net_tk[0] = TK(0); \
       net_kd[1 % NT] = (q[1 % NT] == Q_BATCH -> kd[1 % NT] : K_NONE); net_tk[1 % NT] = TK(1 % NT); NET_CID \
     :: else -> skip fi

/* one settlement of this worker's batch, as written by the worker */
#ifdef TOKEN_IS_LOCK_FENCE
#define CID(i) cid[i]
#else
#define CID(i) TK(i)
#endif
#define SETTLE_MINE(i) \
  if \
  :: i < NT && q[i] == Q_BATCH -> \
     settle_task(w, i, b, s, kd[i], TK(i), CID(i), ok); \
     if :: ok -> sapp[w * NT + i] = 1; rs[i] = S_APPLIED :: else -> rs[i] = S_REFUSED fi \
  :: else -> skip \
  fi

/* the read-back of a refused settlement after a retry (SettleBatcher#confirm) */
#define CONFIRM(i) \
  if \
  :: i < NT && q[i] == Q_BATCH && rs[i] == S_REFUSED -> \
     if \
     :: !CONFIRM_OWN(i, TK(i)) -> rs[i] = S_UNKNOWN \
     :: CONFIRM_OWN(i, TK(i)) && \
        ((kd[i] == K_C && status[i] == DONE) || \
         ((kd[i] == K_FR || kd[i] == K_FX) && (status[i] == FAILED || status[i] == DEAD)) || \
         (kd[i] == K_RL && (status[i] == PENDING || status[i] == FAILED))) -> rs[i] = S_APPLIED \
     :: else -> skip \
     fi \
  :: else -> skip \
  fi

/* what the worker reports for one settlement: task-completed / -failed / -dead, stale-write, or an error */
#define REPORT(i) \
  if \
  :: i < NT && q[i] == Q_BATCH -> \
     printf("w%d task%d kind %d token %d: reports %d\n", w, i, kd[i], TK(i), rs[i]); \
     if \
     :: rs[i] == S_APPLIED -> assert(reports_true || sapp[w * NT + i]) \
     :: rs[i] == S_REFUSED -> assert(reports_true || !sapp[w * NT + i]) \
     :: else -> skip                                    /* unknown, gave up: reported as errors */ \
     fi; \
     RESET_TASK(i) \
  :: else -> skip \
  fi

#define RESET_LEASE b = 0; k = 0; f = 0; s = 0

active [NW] proctype Worker() {
  byte w = _pid;
  byte b, k, f, s;     /* the bucket lease: bucket, key, fence, grant order */
  byte st;             /* W_IDLE, W_ACTIVE, W_RELEASING, W_LOST, W_STOPPED */
  byte q[NT];          /* per task: Q_* */
  byte kd[NT];         /* the settlement's kind */
  byte rs[NT];         /* the settlement's result */
#ifdef TOKEN_IS_LOCK_FENCE
  byte cid[NT];
#endif
  byte sp;             /* settle phase: 0 none, 1 write (and report), 2 read back (and report) */
  bit att;             /* the batch's write was tried before (a retry) */
  byte r, tok, cm, lim, n, ps, pt;
  bit ok;

end_idle:
  do
  :: {
       if
       /* --- take a free bucket (the balancing round's tryAcquire) */
       :: st == W_IDLE ->
          if
          :: b = 0
          :: WNB(w) > 1 -> b = 1
          fi;
          k = KEYOF(w, b);
          try_acquire(w, k, f, r);
          if
          :: r == R_OK -> atomic { s = wser[w]; st = W_ACTIVE; r = 0 }
          :: else -> atomic { RESET_LEASE; r = 0 }
          fi

       /* --- claimBucket: when the bucket may hold due tasks (dueBuckets, a wake-up, a full claim) */
       :: atomic {
            st == W_ACTIVE &&
            (rec_f[b] != f || CLAIMABLE(w, 0, b, MINE(0)) || CLAIMABLE(w, 1 % NT, b, MINE(1 % NT))) ->
#ifdef TOKEN_BEFORE_LOCK
            ps = tokseq + 1; pt = tokseq + 2; tokseq = tokseq + 2  /* nextval() before the record's lock */
          }
          atomic {
#endif
            lim = LIMIT;                                /* batchSize, or the free slots */
            printf("w%d claimBucket bucket%d fence %d limit %d: ", w, b, f, lim);
            if
            :: FAULT -> r = R_ERR; printf("request lost\n")
            :: FAULT_NET -> NET_COPY(N_CLAIM); net_tk[0] = lim; r = R_ERR; printf("delayed in the network\n")
            :: true ->
               db_claim(w, b, f, s, lim, ps, pt, MINE(0), MINE(1 % NT), r, tok, cm);
               if
               :: r == R_OK -> printf("token %d, claimed %d", tok, cm)
               :: r == R_NO -> printf("stale")
               :: else -> printf("layout")
               fi;
               ANSWER(N_CLAIM)
            fi;
            if
            :: r == R_OK ->
               if :: cm & 1 -> q[0] = Q_QUEUED; TK(0) = tok :: else -> skip fi;
               if :: NT > 1 && (cm & 2) -> q[1 % NT] = Q_QUEUED; TK(1 % NT) = tok :: else -> skip fi
#ifdef TOKEN_IS_LOCK_FENCE
               ; if :: cm & 1 -> cid[0] = cseq :: else -> skip fi
               ; if :: NT > 1 && (cm & 2) -> cid[1 % NT] = cseq :: else -> skip fi
#endif
            :: r == R_NO ->                                 /* a newer lease wrote: the bucket is lost */
               printf("w%d loses bucket%d (a newer lease claimed)\n", w, b);
               st = W_LOST;
               if :: q[0] == Q_QUEUED -> RESET_TASK(0) :: else -> skip fi;
               if :: q[1 % NT] == Q_QUEUED -> RESET_TASK(1 % NT) :: else -> skip fi;
               forget_lease(w)
            :: r == R_LAYOUT ->                             /* refused: the worker stops (CONFIG_INVALID) */
               printf("w%d stops: its layout is not the table's\n", w);
               server_release(k, f); forget_lease(w); st = W_STOPPED
            :: else -> skip
            fi;
            r = 0; tok = 0; cm = 0; lim = 0; ps = 0; pt = 0
          }

       /* --- a claimed task's handler: its fenced effect, then it returns or throws */
       :: (st == W_ACTIVE || st == W_RELEASING) && (q[0] == Q_QUEUED || q[1 % NT] == Q_QUEUED) ->
          if :: q[0] == Q_QUEUED -> n = 0 :: q[1 % NT] == Q_QUEUED -> n = 1 % NT fi;
          if
          :: atomic {
               printf("w%d handler: effect task%d fence %d: ", w, n, TK(n));
               if
               :: FAULT -> r = R_ERR; printf("request lost\n")
               :: FAULT_NET -> net_op = N_EFFECT; net_w = w; net_b = n; net_tk[0] = TK(n); r = R_ERR;
                  printf("delayed in the network (or the handler was abandoned)\n")
               :: true ->
                  rx_effect(n, TK(n), r);
                  if :: r == R_OK -> printf("applied\n") :: else -> printf("rejected\n") fi
               fi;
               kd[n] = (r == R_OK -> K_C : K_FR); q[n] = Q_OUT; r = 0; n = 0
             }
          :: atomic { printf("w%d handler throws\n", w); kd[n] = K_FR; q[n] = Q_OUT; n = 0 }
          fi

       /* --- the batcher: everything waiting goes into the next batch */
       :: st != W_IDLE && sp == 0 && (q[0] == Q_OUT || q[1 % NT] == Q_OUT) ->
          atomic {
            if :: q[0] == Q_OUT -> q[0] = Q_BATCH :: else -> skip fi;
            if :: q[1 % NT] == Q_OUT -> q[1 % NT] = Q_BATCH :: else -> skip fi;
            sp = 1; att = 0
          }

       /* --- settle(batch) */
       :: sp == 1 ->
#ifdef SETTLE_NO_SHARE_LOCK
          /* the lease row read without FOR SHARE: a newer lease's claim may commit before the tasks are written */
          atomic {
            printf("w%d settle bucket%d fence %d reads the lease row: ", w, b, f);
            if
            :: FAULT -> r = R_ERR; printf("request lost\n")
            :: true -> r = (LAYOUT_OK(w) && SETTLE_RECORD_OK(b, f) -> R_OK : R_NO); printf("%d\n", r)
            fi
          }
#endif
          atomic {
#ifdef SETTLE_NO_SHARE_LOCK
          if
          :: r == R_ERR -> skip
          :: else ->
#endif
          atomic {
            printf("w%d settle bucket%d fence %d (retry %d): ", w, b, f, att);
            if
#ifndef SETTLE_NO_SHARE_LOCK
            :: FAULT -> r = R_ERR; printf("request lost\n")
            :: FAULT_NET -> NET_COPY(N_SETTLE); r = R_ERR; printf("delayed in the network\n")
#endif
            :: true ->
#ifdef SETTLE_NO_SHARE_LOCK
               if :: r == R_OK -> r = R_OK :: else -> r = R_NO fi;
#else
               r = (LAYOUT_OK(w) -> (SETTLE_RECORD_OK(b, f) -> R_OK : R_NO) : R_LAYOUT);
#endif
               if
               :: r == R_OK -> SETTLE_MINE(0); SETTLE_MINE(1); printf("per task %d %d", rs[0], rs[1 % NT])
               :: else ->
                  printf("refused as a whole");
                  if :: q[0] == Q_BATCH -> rs[0] = S_REFUSED :: else -> skip fi;
                  if :: q[1 % NT] == Q_BATCH -> rs[1 % NT] = S_REFUSED :: else -> skip fi
               fi;
               ANSWER(N_SETTLE)
            fi
          }
#ifdef SETTLE_NO_SHARE_LOCK
          fi;
#endif
          if
          :: r == R_ERR ->                                  /* retryWrite: again after a backoff, or give up */
             atomic {
               r = 0; rs[0] = S_NONE; rs[1 % NT] = S_NONE;
               if
               :: att = 1; printf("w%d retries the settle\n", w)
               :: printf("w%d gives up the settle (writeRetryMs)\n", w);
                  if :: q[0] == Q_BATCH -> rs[0] = S_GAVEUP :: else -> skip fi;
                  if :: q[1 % NT] == Q_BATCH -> rs[1 % NT] = S_GAVEUP :: else -> skip fi;
                  REPORT(0); REPORT(1); sp = 0; att = 0
               fi
             }
#ifdef NO_CONFIRM_ON_REFUSAL
          :: r == R_OK && att -> atomic { r = 0; sp = 2 }  /* only refusals one by one are read back */
          :: r != R_OK && r != R_ERR -> atomic { r = 0; REPORT(0); REPORT(1); sp = 0; att = 0 }
#else
          :: r != R_ERR && att -> atomic { r = 0; sp = 2 }
#endif
          :: r != R_ERR && !att -> atomic { r = 0; REPORT(0); REPORT(1); sp = 0; att = 0 }
          fi
          }

       /* --- a retry's refusals, read back (source.get per task) */
       :: sp == 2 ->
          atomic {
            printf("w%d reads back its refused settlements: ", w);
            if
            :: FAULT -> printf("request lost: the settle is retried\n");
               rs[0] = S_NONE; rs[1 % NT] = S_NONE; sp = 1
            :: true ->
               CONFIRM(0); CONFIRM(1);
               printf("per task %d %d\n", rs[0], rs[1 % NT]);
               REPORT(0); REPORT(1); sp = 0; att = 0
            fi
          }

       /* --- hand the bucket back (rebalance or stop): queued claims released, outcomes written, then release */
       :: atomic {
            st == W_ACTIVE && handovers > 0 ->
            handovers--; st = W_RELEASING;
            printf("w%d hands bucket%d back\n", w, b);
            if :: q[0] == Q_QUEUED -> q[0] = Q_OUT; kd[0] = K_RL :: else -> skip fi;
            if :: q[1 % NT] == Q_QUEUED -> q[1 % NT] = Q_OUT; kd[1 % NT] = K_RL :: else -> skip fi
          }
       :: st == W_RELEASING && q[0] == Q_NONE && q[1 % NT] == Q_NONE ->
          atomic {
            printf("w%d release key%d fence %d: ", w, k, f);
            if
            :: FAULT -> printf("request lost (Consul retries it later, DynamoDB lets it expire)\n")
            :: FAULT_NET -> NET_COPY(N_RELEASE); net_b = k; printf("delayed in the network\n")
            :: true -> printf("sent\n"); server_release(k, f)
            fi;
            forget_lease(w); st = W_IDLE; RESET_LEASE
          }

       /* --- the lease's signal aborts (its TTL ran out on the worker's clock): the bucket is lost */
       :: atomic {
            (st == W_ACTIVE || st == W_RELEASING) && !wtrust[w] ->
            printf("w%d: bucket%d's lease is lost\n", w, b);
            st = W_LOST;
            if :: q[0] == Q_QUEUED -> RESET_TASK(0) :: else -> skip fi;
            if :: q[1 % NT] == Q_QUEUED -> RESET_TASK(1 % NT) :: else -> skip fi;
            forget_lease(w)
          }
       :: st == W_LOST && q[0] == Q_NONE && q[1 % NT] == Q_NONE -> atomic { st = W_IDLE; RESET_LEASE }
       fi
     } unless {
       atomic {
         crash[w] -> crash[w] = 0;
         printf("w%d restarts after its crash\n", w);
         forget_lease(w); RESET_LEASE; RESET_TASK(0); RESET_TASK(1 % NT);
         st = W_IDLE; sp = 0; att = 0; r = 0; tok = 0; cm = 0; lim = 0; n = 0; ps = 0; pt = 0; ok = 0
#ifdef TOKEN_IS_LOCK_FENCE
         ; cid[0] = 0; cid[1 % NT] = 0
#endif
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
#define NET_SETTLE_ONE(i) \
  if \
  :: i < NT && net_kd[i] != K_NONE -> \
     settle_task(net_w, i, net_b, net_s, net_kd[i], net_tk[i], NCID(i), scratch); \
     printf(" task%d %d", i, scratch); \
     if \
     :: scratch && wtok[net_w * NT + i] == net_tk[i] -> sapp[net_w * NT + i] = 1  /* the worker still waits for it */ \
     :: else -> skip \
     fi \
  :: else -> skip \
  fi
#ifdef TOKEN_IS_LOCK_FENCE
#define NCID(i) net_cid[i]
#else
#define NCID(i) net_tk[i]
#endif

active proctype Network() {
  byte scratch, tk2, cm2, n;
end_net:
  do
  :: atomic {
       net_op != N_NONE ->
       printf("network delivers w%d's delayed ", net_w);
       if
       :: net_op == N_CLAIM ->
          printf("claimBucket bucket%d fence %d: ", net_b, net_f);
          /* nobody learns the tasks it claims: each runs under the lease until reclaimed or taken over */
#ifdef TOKEN_BEFORE_LOCK
          tokseq = tokseq + 2;
          db_claim(net_w, net_b, net_f, net_s, net_tk[0], tokseq - 1, tokseq, 0, 0, scratch, tk2, cm2);
#else
          db_claim(net_w, net_b, net_f, net_s, net_tk[0], 0, 0, 0, 0, scratch, tk2, cm2);
#endif
          printf("%d\n", scratch)
       :: net_op == N_SETTLE ->
          printf("settle bucket%d fence %d:", net_b, net_f);
          if
          :: LAYOUT_OK(net_w) && SETTLE_RECORD_OK(net_b, net_f) -> NET_SETTLE_ONE(0); NET_SETTLE_ONE(1)
          :: else -> printf(" refused as a whole")
          fi;
          printf("\n")
       :: net_op == N_RELEASE ->
          printf("release key%d fence %d\n", net_b, net_f);
          server_release(net_b, net_f)
       :: net_op == N_EFFECT ->
          printf("effect task%d fence %d: ", net_b, net_tk[0]);
          rx_effect(net_b, net_tk[0], scratch);
          if :: scratch == R_OK -> printf("applied or already applied\n") :: else -> printf("rejected\n") fi
       fi;
       NET_CLEAR; scratch = 0; tk2 = 0; cm2 = 0; n = 0
     }
  :: atomic { net_op != N_NONE -> NET_CLEAR }
  od
}

/* ------------------------------------------------------------------ liveness */
ltl finished { <> all_finished }
