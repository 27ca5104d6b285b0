import { UnavailableError } from '../lib/packages.mjs';

export default {
  name: 'memory',
  title: 'memory',
  description: 'todo',
  async run() {
    throw new UnavailableError('not written yet');
  },
};
