import { UnavailableError } from '../lib/packages.mjs';

export default {
  name: 'contention',
  title: 'contention',
  description: 'todo',
  async run() {
    throw new UnavailableError('not written yet');
  },
};
