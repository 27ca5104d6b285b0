import { UnavailableError } from '../lib/packages.mjs';

export default {
  name: 'takeover',
  title: 'takeover',
  description: 'todo',
  async run() {
    throw new UnavailableError('not written yet');
  },
};
