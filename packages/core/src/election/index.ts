export { Election } from './election.js';
export { decodeLeaderInfo } from './info.js';
export { runWhileLeader } from './run-while-leader.js';
export type * from './types.js';
