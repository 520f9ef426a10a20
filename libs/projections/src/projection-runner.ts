// The log's one projection runner (libs/ledger), under the names this library has always exported.
export { catchUp, follow, rebuild } from '#ledger';
export type { CatchUpOptions, FollowOptions } from '#ledger';
