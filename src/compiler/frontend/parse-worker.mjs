// Entry of the large-stack parse thread: it runs TypeScript through tsx, as bin/vdm.mjs does.
import { register } from 'tsx/esm/api';

register();
await import('./parse-worker.ts');
