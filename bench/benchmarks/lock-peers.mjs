import { UnavailableError } from '../lib/packages.mjs';

export default {
  name: 'lock-peers',
  title: 'lock-peers',
  description: 'todo',
  async run() {
    throw new UnavailableError('not written yet');
  },
};
