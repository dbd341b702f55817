// The detached copy lives with the latin1 helpers (shared by protocol, auth and ingest).
export { detachedCopy } from '../latin1.js';
