import { UnavailableError } from '../lib/packages.mjs';

export default {
  name: 'tasks-e2e',
  title: 'tasks-e2e',
  description: 'todo',
  async run() {
    throw new UnavailableError('not written yet');
  },
};
