// The log's one projection runner (libs/ledger): a CodeMapperProjection is a LogProjection.
export { catchUp, follow, rebuild as rebuildFrom } from '#ledger';
export type { CatchUpOptions, FollowOptions } from '#ledger';
