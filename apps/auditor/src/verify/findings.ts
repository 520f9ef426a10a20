/** Every kind of problem `verify` reports. Stable: scripts read them from the --json report. */
export type FindingCode =
  // I1: the log as stored
  | 'POSITION_MISSING'
  | 'FIELD_MISMATCH'
  | 'ENVELOPE_MALFORMED'
  | 'STREAM_REVISION_GAP'
  | 'LOG_TRUNCATED'
  | 'TREE_AHEAD_OF_LOG'
  // I2: processing serial numbers
  | 'SERIAL_GAP'
  | 'SERIAL_EVENT_AFTER_TERMINAL'
  | 'SERIAL_TERMINAL_DUPLICATE'
  | 'SERIAL_VOID_UNEXPLAINED'
  // I6: every accepted query was allowed by the authorization table version in force at its time (a
  // citizen's self-information request: by the self-disclosure table version in force)
  | 'QUERY_NOT_LAWFUL'
  | 'QUERY_TABLE_VERSION_NOT_IN_FORCE'
  | 'QUERY_MALFORMED'
  | 'AUTHORIZATION_TABLE_INVALID'
  // A withdrawal of a version not published earlier, withdrawn already, or at or after its effectiveFrom
  | 'AUTHORIZATION_TABLE_WITHDRAWAL_INVALID'
  | 'SELF_DISCLOSURE_TABLE_INVALID'
  // I3: checkpoints and leaves
  | 'CHECKPOINT_MALFORMED'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  | 'CHECKPOINT_KEY_UNANNOUNCED'
  | 'CHECKPOINT_HANDOVER_UNSIGNED'
  | 'CHECKPOINT_KEY_ANNOUNCEMENT_INVALID'
  | 'CHECKPOINT_FIELDS_MISMATCH'
  | 'CHECKPOINT_NOT_INCREASING'
  | 'CHECKPOINT_BEYOND_ITS_POSITION'
  | 'CHECKPOINT_ROOT_MISMATCH'
  | 'CHECKPOINT_INCONSISTENT'
  | 'LEAF_MISMATCH';

/** One problem, located: the position (null when it concerns no single event), its serial, and what differs. */
export interface Finding {
  readonly code: FindingCode;
  readonly position: number | null;
  readonly serial: string | null;
  readonly message: string;
  /** What the log should hold there (the index column, the signed value, the next serial…). */
  readonly expected: string | number | null;
  /** What was found or computed from the stored bytes. */
  readonly calculated: string | number | null;
  readonly field?: string;
}

/** Orders findings by position (those without one last), so the first is the first bad position. */
export function byPosition(a: Finding, b: Finding): number {
  return (a.position ?? Number.MAX_SAFE_INTEGER) - (b.position ?? Number.MAX_SAFE_INTEGER);
}

export function describeFinding(f: Finding): string {
  const where = f.position === null ? 'log' : `position ${f.position}${f.serial ? ` (serial ${f.serial})` : ''}`;
  const diff = f.expected !== null || f.calculated !== null ? `\n    expected:   ${String(f.expected)}\n    calculated: ${String(f.calculated)}` : '';
  return `${f.code} at ${where}: ${f.message}${diff}`;
}
