import { exactlyOnceSuite } from './support/exactly-once.js';

exactlyOnceSuite('postgres');
