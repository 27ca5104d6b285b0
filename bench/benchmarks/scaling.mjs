import { UnavailableError } from '../lib/packages.mjs';

export default {
  name: 'scaling',
  title: 'scaling',
  description: 'todo',
  async run() {
    throw new UnavailableError('not written yet');
  },
};
