// Entry of the large-stack formatting thread: it runs TypeScript through tsx, as bin/vdm.mjs does.
import { register } from 'tsx/esm/api';

register();
await import('./fmt-worker.ts');
