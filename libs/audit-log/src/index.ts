export { AuditLogError } from './errors.js';
export type { AuditLogErrorCode, AuditLogErrorDetails } from './errors.js';
export {
  EMPTY_ROOT,
  HASH_SIZE,
  asHash,
  checkTreeSize,
  hashFromHex,
  hashesEqual,
  isPowerOfTwo,
  leafHash,
  nodeHash,
  rootFromLeafHashes,
  splitPoint,
  toHex,
} from './merkle.js';
export type { Hash } from './merkle.js';
export {
  assertRootsEqual,
  consistencyProof,
  consistencyProofRanges,
  inclusionProof,
  inclusionProofRanges,
  isNodeRange,
  isPerfectRange,
  perfectSubtrees,
  rootAt,
  rootFromInclusionProof,
  rootsFromConsistencyProof,
  subtreeHashFromLeaves,
  subtreeRoot,
  verifyConsistency,
  verifyInclusion,
} from './proof.js';
export type { NodeRange, SubtreeHashAccessor } from './proof.js';
export { CompactRange } from './compact-range.js';
export type { CompactRangeState, OnNodeCompleted } from './compact-range.js';
export { MemoryTree } from './memory-tree.js';
export {
  ED25519_SIGNATURE_TYPE,
  cosignNote,
  formatSignerKey,
  formatVerifierKey,
  generateSigningKey,
  keyId,
  noteParts,
  parseSignerKey,
  parseVerifierKey,
  publicKeyOf,
  signNote,
  verifyNote,
} from './note.js';
export type { NoteSigner, NoteVerifier, SignerKey, VerifierKey } from './note.js';
export { formatCheckpoint, parseCheckpoint, signCheckpoint, verifyCheckpoint } from './checkpoint.js';
export type { Checkpoint } from './checkpoint.js';
export { CHECKPOINT_KEY_ROTATED, CheckpointKeyChain } from './key-chain.js';
export type { ChainKey, CheckpointKeyRotatedData } from './key-chain.js';
