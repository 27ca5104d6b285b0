import { UnavailableError } from '../lib/packages.mjs';

export default {
  name: 'renewal',
  title: 'renewal',
  description: 'todo',
  async run() {
    throw new UnavailableError('not written yet');
  },
};
