import { type Authz, resolveToken } from './acl.js';
import type { ConsulAgent } from './agent.js';
import { blockingQuery, type IndexedResult } from './blocking.js';
import { NO_LEADER, rpcError } from './errors.js';
import { type ConsulRequest, metaHeaders, type QueryOptions } from './http-util.js';
import type { Table } from './state.js';

/** What an endpoint handler gets: the agent, the request, and the RPC-side checks in Consul's order. */
export class EndpointContext {
  constructor(
    readonly agent: ConsulAgent,
    readonly req: ConsulRequest,
  ) {}

  /**
   * The checks an RPC makes before touching state: the datacenter must be ours, a leader must be known
   * (unless a stale read is allowed), and the token must resolve.
   */
  rpc(options: { allowStale?: boolean } = {}): Authz {
    this.forward(options);
    return this.authorize();
  }

  /** The routing half of {@link rpc}: datacenter and leader. */
  forward(options: { allowStale?: boolean } = {}): void {
    const dc = this.req.query.get('dc');
    if (dc !== '' && dc !== this.agent.config.datacenter) throw rpcError('No path to datacenter');
    if (!this.agent.hasLeader && !options.allowStale) throw rpcError(NO_LEADER);
  }

  /** The token half of {@link rpc}. */
  authorize(): Authz {
    return resolveToken(this.agent.config.aclTokens, this.req);
  }

  /** Runs `run` as a (possibly) blocking query over `tables`. */
  blocking<R extends IndexedResult>(
    tables: readonly Table[],
    options: QueryOptions,
    run: () => R,
  ): Promise<R> {
    const { config, store } = this.agent;
    return blockingQuery(
      {
        store,
        clock: config.clock,
        tables,
        minIndex: options.minIndex,
        waitNs: options.waitNs,
        defaultWaitMs: config.defaultBlockingWaitMs,
        maxWaitMs: config.maxBlockingWaitMs,
        signal: this.req.signal,
      },
      run,
    );
  }

  /** The meta headers of a query answered at `index`. */
  meta(index: number, options: QueryOptions, filteredByAcls = false): Record<string, string> {
    return metaHeaders({
      index,
      knownLeader: this.agent.hasLeader,
      lastContactMs: this.agent.lastContactMs(),
      options,
      filteredByAcls,
    });
  }
}
