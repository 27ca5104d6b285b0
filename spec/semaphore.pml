/*
 * baton's counting semaphore (packages/core/src/semaphore/): a Promela model for SPIN.
 *
 * A semaphore of limit N is N slot keys `<name>/slot/0` .. `<name>/slot/N-1`; a permit IS a held slot lock
 * and carries that slot's fence (docs/semaphores.md). What the model has:
 *   - the lock service of spec/common.pml, one key per slot: a grant with a fence that only rises, an
 *     owner-checked release, expiry at any moment after the holder's own trust window ended (or at once when
 *     nobody knows it holds the key: a lost answer, a crash), lock-delay after a loss; each grant records the
 *     limit it was taken under (the slot lock's value `{"limit":N}`);
 *   - processes that each want JOBS permits, one at a time: tryAcquire tries every slot once from a random
 *     start (a transport error rejects it; every slot refused: the census reads slots 0 .. N and refuses
 *     with CONFIG_INVALID when a holder recorded another limit or slot N is held; otherwise null, and
 *     acquire waits and tries again); with a permit, one fenced write to the protected resource, then
 *     release. They may crash at any step and come back, pause for any length, lose their trust window
 *     (renewals failed, or paused past the TTL) and act on a permit they no longer hold;
 *   - the protected resource: per slot key, the highest fence it has seen; a write with a lower fence is
 *     rejected (docs/semaphores.md: "reject a write with a lower one"; an equal fence is the same permit
 *     writing again);
 *   - a network that loses requests and answers and holds back one request (a release or a write) to
 *     deliver it later, or never;
 *   - with MIXED, the last process configured with limit LIMIT + 1 beside the others' LIMIT.
 *
 * Sizes and planted bugs are -D switches (spec/checks.mjs `semaphoreChecks`): NW processes, LIMIT permits,
 * JOBS permits each process wants, FAULTS faults in total. docs/verification.md ("The semaphore model") has
 * the long form and the model-to-code table.
 *
 * Properties: common.pml's one_holder (per slot), fences_rise (per slot), fence_bound; and
 *   limit_bound   at most BOUND slots held at the service and at most BOUND processes trusting a permit;
 *                 BOUND is LIMIT (the smallest limit in use), or LIMIT + 1 with BOUND_LARGEST;
 *   effect_fenced a write applies only if no write of a later grant of that slot has applied before it;
 *   no_refusal    CONFIG_INVALID is never raised;
 *   finished      LTL: every process gets all its permits (weak fairness, finitely many faults).
 */

/* ------------------------------------------------------------------ sizes */
#ifndef NW
#define NW 2            /* processes (at most 4) */
#endif
#ifndef LIMIT
#define LIMIT 1         /* the semaphore's limit (1 to 3; with MIXED 1 or 2) */
#endif
#ifndef JOBS
#define JOBS 1          /* permits each process wants, one after the other */
#endif
#ifndef FAULTS
#define FAULTS 2
#endif
#ifndef MAXF
#define MAXF 15         /* fence bound of the lock service; fence_bound shows it is never reached */
#endif

/* Limits and keys: slot i is key i. The census reads one slot beyond the limit, so keys go up to it. */
#ifdef MIXED
#define LIM(w) ((w) == NW - 1 -> LIMIT + 1 : LIMIT)
#define NK (LIMIT + 2)
#else
#define LIM(w) (LIMIT)
#define NK (LIMIT + 1)
#endif
#define NT NK           /* common.pml's per-task arrays; seen[k] is the resource's highest fence of slot k */

#ifdef BOUND_LARGEST
#define BOUND (LIMIT + 1)
#else
#define BOUND (LIMIT)
#endif

/* Requests the network can hold back and deliver later (or never). */
#define N_NONE    0
#define N_RELEASE 1
#define N_WRITE   2

/* ghosts of grants: the limit each slot's current lease recorded, and each slot's grants in order */
byte rlimit[NK];
byte gser[NK];
#define GRANTED(w, k) rlimit[k] = LIM(w); gser[k]++

#include "common.pml"

#ifndef OFF_limit_bound
#define OFF_limit_bound 0
#endif
#ifndef OFF_no_refusal
#define OFF_no_refusal 0
#endif
unsigned limit_bound : 1 = OFF_limit_bound;
unsigned no_refusal : 1 = OFF_no_refusal;

/* ------------------------------------------------------------------ state of this model */
byte done[NW];          /* permits each process has used (a write that applied and was answered) */
byte seengen[NK];       /* ghost: the grant (gser) of the write the resource applied last, per slot */

byte net_op;
byte net_w;
byte net_k;
byte net_f;
byte net_g;
#define NET_SEND(op, w, k, f, g) net_op = op; net_w = w; net_k = k; net_f = f; net_g = g

/* ------------------------------------------------------------------ planted bugs */
#ifdef SLOT_BEYOND_LIMIT
#define SCAN(w) (LIM(w) + 1)                      /* `slot <= limit`: slot `limit` is tried too */
#else
#define SCAN(w) (LIM(w))
#endif

#ifdef UNFENCED_WRITE
#define WRITE_APPLIES(k, f) (1)                   /* the resource ignores the fence */
#else
#define WRITE_APPLIES(k, f) (f >= seen[k])        /* rejects a fence lower than the highest seen */
#endif

/* ------------------------------------------------------------------ the protected resource */
/* A write with permit (slot k, fence f) of grant g (ghost). */
inline rx_write(k, f, g, res) {
  if
  :: WRITE_APPLIES(k, f) ->
     assert(effect_fenced || (g >= seengen[k] && g > 0));
     seen[k] = f; seengen[k] = g; res = R_OK
  :: else -> res = R_NO
  fi
}

/* ------------------------------------------------------------------ processes */
#define ANY_SLOT_HELD(w) ((held[0] && 0 < LIM(w)) || (held[1] && 1 < LIM(w)) || \
                          (NK > 2 && held[2] && 2 < LIM(w)) || (NK > 3 && held[3] && 3 < LIM(w)))

active [NW] proctype Proc() {
  byte w = _pid;        /* Proc is declared first: pids 0 .. NW-1 */
  byte s, i, k, f, g, r;

end_idle:
  do
  :: {
       done[w] < JOBS;
       /* tryAcquire: each slot once, from a random start */
       if
       :: s = 0
       :: SCAN(w) > 1 -> s = 1
       :: SCAN(w) > 2 -> s = 2
       :: SCAN(w) > 3 -> s = 3
       fi;
       i = 0;
scan:
       k = (s + i) % SCAN(w);
       atomic { try_acquire(w, k, f, r); if :: r == R_OK -> g = gser[k] :: else -> skip fi }
       if
       :: r == R_OK -> goto use
       :: r == R_ERR -> goto next                     /* a transport error rejects tryAcquire */
       :: else -> i++
       fi;
       if
       :: i < SCAN(w) -> goto scan
       :: else -> skip
       fi;

       /* every slot refused: the census reads slots 0 .. limit (in parallel in the code; one step here) */
       atomic {
         i = 0;
         r = R_NO;
         do
         :: r == R_NO && i <= LIM(w) ->
            printf("w%d reads slot %d: ", w, i);
            if
            :: FAULT -> r = R_ERR; printf("request lost\n")
            :: !held[i] -> printf("free\n")
            :: held[i] && rlimit[i] == LIM(w) && i < LIM(w) -> printf("held, limit %d\n", rlimit[i])
            :: held[i] && (rlimit[i] != LIM(w) || i >= LIM(w)) ->
               r = R_OK; printf("held, limit %d: CONFIG_INVALID (limit)\n", rlimit[i]);
               assert(no_refusal || 0)
            fi;
            i++
         :: else -> break
         od
       }
       if
       :: r != R_NO -> goto next                      /* a transport error, or the refusal: acquire rejects */
       :: else -> skip
       fi;
       /* null: acquire waits for a slot to come free (watch, or a poll; one TTL at most), then tries again */
#ifdef WAIT_FOR_CHANGE
       /* waits for the next grant of a slot even when a slot was refused only for its lock-delay */
       ANY_SLOT_HELD(w);
#endif
       goto next;

use:
       /* the permit's write: (slot key, fence) to the resource */
#ifdef WRITE_CHECK_THEN_ACT
       /* the resource checks the fence, then stores, in two steps (no conditional write) */
       atomic {
         printf("w%d writes slot %d fence %d: checked ", w, k, f);
         if :: WRITE_APPLIES(k, f) -> r = R_OK; printf("ok\n") :: else -> r = R_NO; printf("stale\n") fi
       }
       if
       :: r == R_OK ->
          atomic {
            printf("w%d: the resource stores slot %d fence %d\n", w, k, f);
            assert(effect_fenced || (g >= seengen[k] && g > 0));
            seen[k] = f; seengen[k] = g; done[w]++
          }
       :: else -> skip
       fi;
#else
       atomic {
         printf("w%d writes slot %d fence %d: ", w, k, f);
         if
         :: FAULT -> r = R_ERR; printf("request lost\n")
         :: FAULT_NET -> NET_SEND(N_WRITE, w, k, f, g); r = R_ERR; printf("delayed in the network\n")
         :: true ->
            rx_write(k, f, g, r);
            if :: r == R_OK -> printf("applied") :: else -> printf("rejected (a newer fence was seen)") fi;
            if
            :: printf("\n")
            :: FAULT -> r = R_ERR; printf(", answer lost\n")
            fi
         fi;
         if :: r == R_OK -> done[w]++ :: else -> skip fi
       }
#endif

       /* permit.release(): the slot lock's release */
       atomic {
         printf("w%d release slot %d fence %d: ", w, k, f);
         if
         :: FAULT -> printf("request lost (the lease expires)\n")
         :: FAULT_NET -> NET_SEND(N_RELEASE, w, k, f, g); printf("delayed in the network\n")
         :: true -> printf("sent\n"); server_release(k, f)
         fi;
         forget_lease(w)
       }
next:
       atomic { s = 0; i = 0; k = 0; f = 0; g = 0; r = 0 }
     } unless {
       atomic {
         crash[w] -> crash[w] = 0;
         printf("w%d restarts after its crash\n", w);
         forget_lease(w);
         s = 0; i = 0; k = 0; f = 0; g = 0; r = 0
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
       :: net_op == N_RELEASE ->
          printf("release slot %d fence %d\n", net_k, net_f);
          server_release(net_k, net_f)
       :: net_op == N_WRITE ->
          printf("write slot %d fence %d: ", net_k, net_f);
          rx_write(net_k, net_f, net_g, scratch);
          if :: scratch == R_OK -> printf("applied\n") :: else -> printf("rejected\n") fi
       fi;
       net_op = N_NONE; net_w = 0; net_k = 0; net_f = 0; net_g = 0; scratch = 0
     }
  :: atomic { net_op != N_NONE -> net_op = N_NONE; net_w = 0; net_k = 0; net_f = 0; net_g = 0 }
  od
}

/* ------------------------------------------------------------------ the bound, in every state */
#define HELD(i) (i < NK && held[i])
#define TRUSTING(i) (i < NW && wtrust[i] && wf[i] != 0)

active proctype Bound() {
  assert(limit_bound || (HELD(0) + HELD(1) + HELD(2) + HELD(3) <= BOUND &&
                         TRUSTING(0) + TRUSTING(1) + TRUSTING(2) + TRUSTING(3) <= BOUND))
}

/* ------------------------------------------------------------------ liveness */
#define SERVED(i) (i >= NW || done[i] >= JOBS)
/* Every process gets all the permits it wants (weak fairness; faults are bounded by FAULTS). */
ltl finished { <> (SERVED(0) && SERVED(1) && SERVED(2) && SERVED(3)) }
