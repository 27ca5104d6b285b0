export {
  type InjectedFault,
  MemoryTaskSource,
  type MemoryTaskSourceOptions,
  type TaskSourceOperation,
} from './source.js';
