import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { ProtocolError } from '@baton/core';
import { BACKEND, isConditionalFailure } from './errors.js';
import {
  ATTR,
  EPOCH_ITEM_KEY,
  EXPIRY_SLACK_S,
  encodeKey,
  epochAbove,
  epochSpan,
  type FenceMode,
  type Item,
  LOCK_PREFIX,
  type LockRecord,
  parseRecord,
  WAITER_INFO_PREFIX,
  WAITER_TICKET_PREFIX,
} from './record.js';
import type { CallLimits, Requester } from './requester.js';

/** What a new holder writes. */
export interface GrantInput {
  owner: string;
  ownerName: string | undefined;
  /** Record version of this grant (fresh UUID; the same one on retries of the same grant). */
  rvn: string;
  leaseMs: number;
  delayMs: number;
  value: string | undefined;
}

/**
 * Precondition of a grant: the item is free (in `counter` mode: or missing), or still carries the record
 * version the contender saw.
 */
export type GrantExpectation = { kind: 'free' } | { kind: 'version'; rvn: string };

/**
 * Precondition of a grant that starts a new fence epoch: the item still carries the version read (or
 * created) before the epoch was drawn. There is no "absent" variant: an epoch drawn before its item existed
 * could be older than the epoch of an incarnation created and deleted meanwhile, and repeat its fences.
 */
export type EpochExpectation = { kind: 'version'; rvn: string };

/**
 * How a grant treats the item's line of waiters: `barge` ignores it (`tryAcquire`), `empty` requires that
 * nobody waits (a blocking acquire that has not lined up), `{ waiter }` requires that this waiter's place
 * still exists and removes it in the same write (the first in line taking the key).
 */
export type LineGrant = 'barge' | 'empty' | { readonly waiter: string };

/** A place a waiter puts in the line. */
export interface WaiterInput {
  id: string;
  version: string;
  leaseMs: number;
  sessionId: string;
}

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });

/**
 * The lock table's data-plane operations, one DynamoDB request each (plus retries of that same request).
 * Conditional writes resolve `null`/`false` when their condition fails; they never throw for that.
 */
export class LockTable {
  readonly #client: DynamoDBClient;
  readonly #requester: Requester;
  readonly table: string;
  readonly partitionKey: string;
  readonly fenceMode: FenceMode;
  readonly #names: Record<string, string>;
  readonly #wallSeconds: () => number;
  readonly #wallMs: () => number;

  /**
   * `wallMs` is read for one thing only: the `expiresAt` attribute `epoch` mode writes for DynamoDB's TTL
   * (never in `counter` mode, and never for a decision). `stampMs` only for the times a grant and a waiter's
   * place are stamped with (`acquired`, a waiter's `t`), which operators see; never for a decision either.
   */
  constructor(
    client: DynamoDBClient,
    requester: Requester,
    table: string,
    partitionKey: string,
    fenceMode: FenceMode,
    wallMs: () => number,
    stampMs: () => number,
  ) {
    this.#client = client;
    this.#requester = requester;
    this.table = table;
    this.partitionKey = partitionKey;
    this.fenceMode = fenceMode;
    this.#wallSeconds = () => Math.floor(wallMs() / 1000);
    this.#wallMs = stampMs;
    this.#names = {
      '#pk': partitionKey,
      '#owner': ATTR.owner,
      '#ownerName': ATTR.ownerName,
      '#rvn': ATTR.rvn,
      '#fence': ATTR.fence,
      '#fenceMax': ATTR.fenceMax,
      '#lease': ATTR.leaseMs,
      '#delay': ATTR.delayMs,
      '#hold': ATTR.holdMs,
      '#value': ATTR.value,
      '#epoch': ATTR.epoch,
      '#waiting': ATTR.waiting,
      '#tickets': ATTR.tickets,
      '#expires': ATTR.expiresAt,
      '#mode': ATTR.mode,
      '#acquired': ATTR.acquired,
    };
  }

  /** `epoch` mode only: the TTL attribute, `windowMs` (the item's own windows) plus a day from now. */
  #expiry(windowMs: number): { set: string[]; values: Record<string, AttributeValue> } {
    if (this.fenceMode !== 'epoch') return { set: [], values: {} };
    const at = this.#wallSeconds() + Math.ceil(windowMs / 1000) + EXPIRY_SLACK_S;
    return { set: ['#expires = :expires'], values: { ':expires': n(at) } };
  }

  /** Consistent read of a lock item; `null` when it does not exist. */
  async read(key: string, limits: CallLimits = {}): Promise<LockRecord | null> {
    const output = await this.#requester.run(
      'GetItem',
      (abortSignal) =>
        this.#client.send(
          new GetItemCommand({ TableName: this.table, Key: this.#key(encodeKey(key)), ConsistentRead: true }),
          { abortSignal },
        ),
      limits,
    );
    return output.Item ? parseRecord(key, output.Item) : null;
  }

  /**
   * Cheap reachability check (an eventually consistent read of one small item, the fence-epoch item).
   * Resolves the fence mode that item says deletes lock items (`epoch`), if any.
   */
  async probe(limits: CallLimits = {}, consistent = false): Promise<string | undefined> {
    const output = await this.#requester.run(
      'GetItem',
      (abortSignal) =>
        this.#client.send(
          new GetItemCommand({
            TableName: this.table,
            Key: this.#key(EPOCH_ITEM_KEY),
            ProjectionExpression: '#pk, #mode',
            ExpressionAttributeNames: { '#pk': this.partitionKey, '#mode': ATTR.mode },
            ConsistentRead: consistent,
          }),
          { abortSignal },
        ),
      limits,
    );
    return output.Item?.[ATTR.mode]?.S;
  }

  /**
   * `epoch` mode: marks the table as one whose lock items get deleted (`mode = epoch` on the fence-epoch
   * item), so that `counter`-mode providers, whose fences would restart on a re-created item, refuse it.
   */
  async markDeleting(limits: CallLimits = {}): Promise<void> {
    await this.#requester.run(
      'UpdateItem',
      (abortSignal) =>
        this.#client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: this.#key(EPOCH_ITEM_KEY),
            UpdateExpression: 'SET #mode = :mode',
            ExpressionAttributeNames: { '#mode': ATTR.mode },
            ExpressionAttributeValues: { ':mode': s('epoch') },
          }),
          { abortSignal },
        ),
      limits,
    );
  }

  /**
   * `epoch` mode: creates a missing lock item, free and without a fence span (fence 0), so that the epoch
   * of its first grant is drawn while the item exists: after every earlier incarnation of the key was
   * deleted, hence above all their epochs. `false` when the item exists.
   */
  async createFree(key: string, rvn: string, limits: CallLimits = {}): Promise<boolean> {
    const condition = 'attribute_not_exists(#pk)';
    const expiry = this.#expiry(0);
    const update = `SET ${['#rvn = :rvn', '#fence = :zero', ...expiry.set].join(', ')}`;
    const item = await this.#conditional(
      {
        TableName: this.table,
        Key: this.#key(encodeKey(key)),
        ConditionExpression: condition,
        UpdateExpression: update,
        ...this.#expressionMaps(`${condition} ${update}`, {
          ':rvn': s(rvn),
          ':zero': n(0),
          ...expiry.values,
        }),
      },
      limits,
    );
    return item !== null;
  }

  /**
   * `epoch` mode: release by deleting the item, conditional on ownership (as {@link LockTable.release}) and
   * on nobody waiting in its line. `false` when the condition failed (someone waits, or the lease is gone).
   */
  async deleteReleased(
    key: string,
    owned: { owner: string; versions: readonly string[] },
    limits: CallLimits = {},
  ): Promise<boolean> {
    const placeholders = owned.versions.map((_, i) => `:v${i}`);
    const condition =
      `#owner = :owner AND #rvn IN (${placeholders.join(', ')}) AND ` +
      '(attribute_not_exists(#waiting) OR #waiting = :zero)';
    const values: Record<string, AttributeValue> = { ':owner': s(owned.owner), ':zero': n(0) };
    owned.versions.forEach((version, i) => {
      values[`:v${i}`] = s(version);
    });
    try {
      await this.#requester.run(
        'DeleteItem',
        (abortSignal) =>
          this.#client.send(
            new DeleteItemCommand({
              TableName: this.table,
              Key: this.#key(encodeKey(key)),
              ConditionExpression: condition,
              ...this.#expressionMaps(condition, values),
            }),
            { abortSignal },
          ),
        limits,
      );
      return true;
    } catch (error) {
      if (isConditionalFailure(error)) return false;
      throw error;
    }
  }

  /**
   * Takes the key: sets the holder and a new record version and adds 1 to the fence, all in one conditional
   * UpdateItem that returns the new item. `null` when the condition failed (held, released with a hold time,
   * or another version; in `epoch` mode also: span used up or item missing).
   *
   * In `counter` mode the free condition also matches a missing item, which the update creates with fence 1.
   * In `epoch` mode the item must exist and stay within its fence span (new items go through
   * {@link LockTable.grantInEpoch}).
   */
  async grant(
    key: string,
    expect: GrantExpectation,
    input: GrantInput,
    limits: CallLimits = {},
    line: LineGrant = 'barge',
  ): Promise<LockRecord | null> {
    const free = 'attribute_not_exists(#owner) AND attribute_not_exists(#hold)';
    const condition =
      this.fenceMode === 'counter'
        ? expect.kind === 'free'
          ? free
          : '#rvn = :seen'
        : expect.kind === 'free'
          ? `attribute_exists(#fence) AND ${free} AND #fence < #fenceMax`
          : '#rvn = :seen AND #fence < #fenceMax';
    const { set, remove, values } = this.#grantParts(input);
    const parts = lineParts(line);
    return this.#grantWrite(
      key,
      {
        condition: condition + parts.condition,
        update: `SET ${set.join(', ')} ADD ${['#fence :one', ...parts.add].join(', ')} REMOVE ${[...remove, ...parts.remove].join(', ')}`,
        values: {
          ...values,
          ...parts.values,
          ':one': n(1),
          ...(expect.kind === 'version' ? { ':seen': s(expect.rvn) } : {}),
        },
        names: parts.names,
      },
      limits,
    );
  }

  /**
   * `epoch` mode: takes the key and starts a new fence span from `epoch`, drawn after `expect.rvn` was read
   * or created. Used when the item was just created (fence 0, no span), its span is used up, or it was
   * created in `counter` mode. `null` when the condition failed.
   */
  async grantInEpoch(
    key: string,
    expect: EpochExpectation,
    epoch: number,
    input: GrantInput,
    limits: CallLimits = {},
    line: LineGrant = 'barge',
  ): Promise<LockRecord | null> {
    const span = epochSpan(epoch);
    const { set, remove, values } = this.#grantParts(input);
    const parts = lineParts(line);
    const add = parts.add.length > 0 ? ` ADD ${parts.add.join(', ')}` : '';
    return this.#grantWrite(
      key,
      {
        condition: `#rvn = :seen${parts.condition}`,
        update: `SET ${[...set, '#fence = :first', '#fenceMax = :max'].join(', ')}${add} REMOVE ${[...remove, ...parts.remove].join(', ')}`,
        values: {
          ...values,
          ...parts.values,
          ':first': n(span.first),
          ':max': n(span.max),
          ':seen': s(expect.rvn),
        },
        names: parts.names,
      },
      limits,
    );
  }

  /**
   * Puts a waiter at the end of the key's line: its ticket is the item's `tickets` counter plus one, drawn
   * and written in the same conditional UpdateItem, which also counts it in `waiting`. Resolves the item as
   * it is after the write (holder and whole line), or `null` when the item does not exist.
   */
  async joinLine(key: string, waiter: WaiterInput, limits: CallLimits = {}): Promise<LockRecord | null> {
    const names = waiterNames(waiter.id);
    return this.#grantWrite(
      key,
      {
        condition: 'attribute_exists(#rvn) AND attribute_not_exists(#w)',
        update:
          'SET #tickets = if_not_exists(#tickets, :zero) + :one, #w = if_not_exists(#tickets, :zero) + :one, ' +
          '#wi = :info ADD #waiting :one',
        values: {
          ':zero': n(0),
          ':one': n(1),
          ':info': {
            M: {
              v: s(waiter.version),
              l: n(waiter.leaseMs),
              s: s(waiter.sessionId),
              t: n(this.#wallMs()),
            },
          },
        },
        names,
      },
      limits,
    );
  }

  /** A waiter's heartbeat: a new version of its place. `false` when the place is gone. */
  async refreshPlace(key: string, id: string, version: string, limits: CallLimits = {}): Promise<boolean> {
    const condition = 'attribute_exists(#w)';
    const update = 'SET #wi.#v = :version';
    const item = await this.#conditional(
      {
        TableName: this.table,
        Key: this.#key(encodeKey(key)),
        ConditionExpression: condition,
        UpdateExpression: update,
        ...this.#expressionMaps(
          `${condition} ${update}`,
          { ':version': s(version) },
          {
            ...waiterNames(id),
            '#v': 'v',
          },
        ),
      },
      limits,
    );
    return item !== null;
  }

  /**
   * Removes a place from the line: the waiter's own (it gave up; no further condition), or one whose
   * version stayed unchanged for longer than its lease (`seenVersion`: only if it still carries it).
   * `false` when the place was already gone or had been refreshed.
   */
  async removePlace(
    key: string,
    id: string,
    seenVersion?: string,
    limits: CallLimits = {},
  ): Promise<boolean> {
    const condition =
      seenVersion === undefined ? 'attribute_exists(#w)' : 'attribute_exists(#w) AND #wi.#v = :seen';
    const update = 'ADD #waiting :less REMOVE #w, #wi';
    const item = await this.#conditional(
      {
        TableName: this.table,
        Key: this.#key(encodeKey(key)),
        ConditionExpression: condition,
        UpdateExpression: update,
        ...this.#expressionMaps(
          `${condition} ${update}`,
          { ':less': n(-1), ...(seenVersion === undefined ? {} : { ':seen': s(seenVersion) }) },
          { ...waiterNames(id), '#v': 'v' },
        ),
      },
      limits,
    );
    return item !== null;
  }

  /**
   * Draws a new fence epoch from the table-wide counter item, whose span starts above `fence`. The counter
   * normally is far ahead of any item's fence already; only an item that `counter` mode pushed beyond it
   * costs a second increment, which moves the counter past that item so a later re-creation of the item
   * still starts above it.
   */
  async nextEpoch(limits: CallLimits = {}, fence = 0): Promise<number> {
    const epoch = await this.#addEpoch(1, limits);
    const needed = epochAbove(fence);
    return epoch >= needed ? epoch : this.#addEpoch(needed - epoch, limits);
  }

  async #addEpoch(amount: number, limits: CallLimits): Promise<number> {
    const output = await this.#requester.run(
      'UpdateItem',
      (abortSignal) =>
        this.#client.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: this.#key(EPOCH_ITEM_KEY),
            UpdateExpression: 'ADD #epoch :amount',
            ExpressionAttributeNames: { '#epoch': ATTR.epoch },
            ExpressionAttributeValues: { ':amount': n(amount) },
            ReturnValues: 'UPDATED_NEW',
          }),
          { abortSignal },
        ),
      limits,
    );
    const epoch = Number(output.Attributes?.[ATTR.epoch]?.N);
    if (!Number.isSafeInteger(epoch) || epoch < 1) {
      throw new ProtocolError(`the fence-epoch item returned ${String(epoch)}`, { backend: BACKEND });
    }
    return epoch;
  }

  /** Heartbeat: a new record version, conditional on `owner` still holding one of `versions`. */
  renew(
    key: string,
    owned: { owner: string; versions: readonly string[]; rvn: string },
    lease: { leaseMs: number; delayMs: number },
    limits: CallLimits = {},
  ): Promise<boolean> {
    const expiry = this.#expiry(lease.leaseMs + lease.delayMs);
    return this.#ownedWrite(
      key,
      owned,
      `SET ${['#rvn = :rvn, #lease = :lease, #delay = :delay', ...expiry.set].join(', ')}`,
      { ':lease': n(lease.leaseMs), ':delay': n(lease.delayMs), ...expiry.values },
      limits,
    );
  }

  /** Replaces the published value (and the record version), conditional on ownership. */
  publish(
    key: string,
    owned: { owner: string; versions: readonly string[]; rvn: string },
    value: string,
    limits: CallLimits = {},
  ): Promise<boolean> {
    return this.#ownedWrite(key, owned, 'SET #rvn = :rvn, #value = :value', { ':value': s(value) }, limits);
  }

  /**
   * Marks the item released (the fence stays), conditional on ownership. With `holdMs > 0` the item stays
   * unavailable until a contender has watched this version for that long.
   */
  release(
    key: string,
    owned: { owner: string; versions: readonly string[]; rvn: string },
    holdMs: number,
    limits: CallLimits = {},
  ): Promise<boolean> {
    const dropped = '#owner, #ownerName, #value, #lease, #delay, #acquired';
    const expiry = this.#expiry(holdMs);
    const set = ['#rvn = :rvn', ...expiry.set];
    return holdMs > 0
      ? this.#ownedWrite(
          key,
          owned,
          `SET ${[...set, '#hold = :hold'].join(', ')} REMOVE ${dropped}`,
          { ':hold': n(holdMs), ...expiry.values },
          limits,
        )
      : this.#ownedWrite(key, owned, `SET ${set.join(', ')} REMOVE ${dropped}, #hold`, expiry.values, limits);
  }

  /** Clears the holder whoever it is (operator action). `false` when nobody held the key. */
  async forceRelease(key: string, rvn: string, limits: CallLimits = {}): Promise<boolean> {
    const condition = 'attribute_exists(#owner)';
    const expiry = this.#expiry(0);
    const update = `SET ${['#rvn = :rvn', ...expiry.set].join(', ')} REMOVE #owner, #ownerName, #value, #lease, #delay, #hold, #acquired`;
    const item = await this.#conditional(
      {
        TableName: this.table,
        Key: this.#key(encodeKey(key)),
        ConditionExpression: condition,
        UpdateExpression: update,
        ...this.#expressionMaps(`${condition} ${update}`, { ':rvn': s(rvn), ...expiry.values }),
      },
      limits,
    );
    return item !== null;
  }

  /** Every held lock whose key starts with `prefix`: a full-table Scan (reads, and bills, every item). */
  async scanHeld(prefix: string, limits: CallLimits = {}): Promise<LockRecord[]> {
    const records: LockRecord[] = [];
    let startKey: Item | undefined;
    do {
      const output = await this.#requester.run(
        'Scan',
        (abortSignal) =>
          this.#client.send(
            new ScanCommand({
              TableName: this.table,
              ConsistentRead: true,
              FilterExpression: 'begins_with(#pk, :prefix) AND attribute_exists(#owner)',
              ExpressionAttributeNames: { '#pk': this.partitionKey, '#owner': ATTR.owner },
              ExpressionAttributeValues: { ':prefix': s(encodeKey(prefix)) },
              ...(startKey ? { ExclusiveStartKey: startKey } : {}),
            }),
            { abortSignal },
          ),
        limits,
      );
      for (const item of output.Items ?? []) {
        const stored = item[this.partitionKey]?.S;
        if (stored?.startsWith(LOCK_PREFIX))
          records.push(parseRecord(stored.slice(LOCK_PREFIX.length), item));
      }
      startKey = output.LastEvaluatedKey;
    } while (startKey);
    return records;
  }

  #grantParts(input: GrantInput): {
    set: string[];
    remove: string[];
    values: Record<string, AttributeValue>;
  } {
    const expiry = this.#expiry(input.leaseMs + input.delayMs);
    const set = [
      '#owner = :owner',
      '#rvn = :rvn',
      '#lease = :lease',
      '#delay = :delay',
      '#acquired = :acquired',
      ...expiry.set,
    ];
    const remove = ['#hold'];
    const values: Record<string, AttributeValue> = {
      ':owner': s(input.owner),
      ':acquired': { M: { t: n(this.#wallMs()), o: s(input.owner) } },
      ':rvn': s(input.rvn),
      ':lease': n(input.leaseMs),
      ':delay': n(input.delayMs),
      ...expiry.values,
    };
    if (input.value !== undefined) {
      set.push('#value = :value');
      values[':value'] = s(input.value);
    } else {
      remove.push('#value');
    }
    if (input.ownerName !== undefined) {
      set.push('#ownerName = :ownerName');
      values[':ownerName'] = s(input.ownerName);
    } else {
      remove.push('#ownerName');
    }
    return { set, remove, values };
  }

  async #grantWrite(
    key: string,
    parts: {
      condition: string;
      update: string;
      values: Record<string, AttributeValue>;
      names?: Record<string, string> | undefined;
    },
    limits: CallLimits,
  ): Promise<LockRecord | null> {
    const item = await this.#conditional(
      {
        TableName: this.table,
        Key: this.#key(encodeKey(key)),
        ConditionExpression: parts.condition,
        UpdateExpression: parts.update,
        ReturnValues: 'ALL_NEW',
        ...this.#expressionMaps(`${parts.condition} ${parts.update}`, parts.values, parts.names),
      },
      limits,
    );
    return item ? parseRecord(key, item) : null;
  }

  async #ownedWrite(
    key: string,
    owned: { owner: string; versions: readonly string[]; rvn: string },
    update: string,
    values: Record<string, AttributeValue>,
    limits: CallLimits,
  ): Promise<boolean> {
    const placeholders = owned.versions.map((_, i) => `:v${i}`);
    const condition = `#owner = :owner AND #rvn IN (${placeholders.join(', ')})`;
    const all: Record<string, AttributeValue> = { ...values, ':owner': s(owned.owner), ':rvn': s(owned.rvn) };
    owned.versions.forEach((version, i) => {
      all[`:v${i}`] = s(version);
    });
    const item = await this.#conditional(
      {
        TableName: this.table,
        Key: this.#key(encodeKey(key)),
        ConditionExpression: condition,
        UpdateExpression: update,
        ...this.#expressionMaps(`${condition} ${update}`, all),
      },
      limits,
    );
    return item !== null;
  }

  /** Runs a conditional UpdateItem; resolves the returned attributes (`{}` without ReturnValues) or `null`. */
  async #conditional(input: UpdateItemCommandInput, limits: CallLimits): Promise<Item | null> {
    try {
      const output = await this.#requester.run(
        'UpdateItem',
        (abortSignal) => this.#client.send(new UpdateItemCommand(input), { abortSignal }),
        limits,
      );
      return output.Attributes ?? {};
    } catch (error) {
      if (isConditionalFailure(error)) return null;
      throw error;
    }
  }

  /** Only the placeholders an expression uses: DynamoDB rejects unused ones. */
  #expressionMaps(
    expression: string,
    values: Record<string, AttributeValue>,
    extraNames: Record<string, string> = {},
  ): {
    ExpressionAttributeNames: Record<string, string>;
    ExpressionAttributeValues?: Record<string, AttributeValue>;
  } {
    const names: Record<string, string> = {};
    for (const [placeholder] of expression.matchAll(/#\w+/g)) {
      const name = extraNames[placeholder] ?? this.#names[placeholder];
      if (name === undefined) throw new Error(`unknown attribute placeholder ${placeholder}`);
      names[placeholder] = name;
    }
    const used: Record<string, AttributeValue> = {};
    for (const [placeholder] of expression.matchAll(/:\w+/g)) {
      const value = values[placeholder];
      if (value === undefined) throw new Error(`no value for ${placeholder}`);
      used[placeholder] = value;
    }
    return Object.keys(used).length > 0
      ? { ExpressionAttributeNames: names, ExpressionAttributeValues: used }
      : { ExpressionAttributeNames: names };
  }

  #key(value: string): Item {
    return { [this.partitionKey]: s(value) };
  }
}

/** Placeholders of one waiter's two attributes. */
function waiterNames(id: string): Record<string, string> {
  return { '#w': WAITER_TICKET_PREFIX + id, '#wi': WAITER_INFO_PREFIX + id };
}

/** The condition and update parts a {@link LineGrant} adds to a grant. */
function lineParts(line: LineGrant): {
  condition: string;
  add: string[];
  remove: string[];
  values: Record<string, AttributeValue>;
  names: Record<string, string>;
} {
  if (line === 'barge') return { condition: '', add: [], remove: [], values: {}, names: {} };
  if (line === 'empty') {
    return {
      condition: ' AND (attribute_not_exists(#waiting) OR #waiting = :zero)',
      add: [],
      remove: [],
      values: { ':zero': n(0) },
      names: {},
    };
  }
  return {
    condition: ' AND attribute_exists(#w)',
    add: ['#waiting :less'],
    remove: ['#w', '#wi'],
    values: { ':less': n(-1) },
    names: waiterNames(line.waiter),
  };
}
