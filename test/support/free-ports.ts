/** Free loopback ports for processes a test starts, all different (the load runner's, which holds each until all are chosen). */
export { freePorts } from '../../load-tests/runner/processes.js';
