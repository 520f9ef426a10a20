// The 検証 action: fetch the proof, the signed checkpoint, the verifier key and the log's key set through
// the portal, and check everything here, in the browser (src/verify). Neither the portal nor the hub is trusted for the
// result: a changed byte anywhere fails, with the reason.
import { api } from './api.js';
import type { ServedKey } from './verify/key-chain.js';
import type { InclusionAnswer, VerificationResult } from './verify/verify-record.js';
import { verifyRecord } from './verify/verify-record.js';

interface CheckpointJson {
  readonly origin: string;
  readonly size: number;
  readonly note: string;
}

const PIN = 'linkage-ledger.portal.verifier-key';

export type KeyChanged = { readonly ok: false; readonly code: 'VERIFIER_KEY_CHANGED'; readonly message: string; readonly pinned: string; readonly given: string };

/**
 * The verifier key (the log's first checkpoint key) is pinned in this browser at first use (trust on first
 * use) and compared later; the key is also shown so that it can be compared with the one the hub's
 * operator publishes. After a rotation the latest checkpoint is signed by a later key: the served key set
 * is rebuilt here as a chain from the pinned key (each key announced by the one before, each hand-over
 * signed by both), and the checkpoint verified with the key for its size.
 */
export async function verifySerial(serial: string): Promise<VerificationResult | KeyChanged> {
  const key = await api<{ origin: string; verifierKey: string }>('GET', '/audit/verifier-key');
  let pinned: string | null = null;
  try {
    pinned = localStorage.getItem(PIN);
    if (pinned === null) localStorage.setItem(PIN, key.verifierKey);
  } catch {
    pinned = null;
  }
  if (pinned !== null && pinned !== key.verifierKey) {
    return { ok: false, code: 'VERIFIER_KEY_CHANGED', message: `the verifier key changed since this browser first saw it (${pinned})`, pinned, given: key.verifierKey };
  }
  const served = await api<{ origin: string; keys: ServedKey[] }>('GET', '/audit/verifier-keys');
  const checkpoint = await api<CheckpointJson>('GET', '/audit/checkpoint');
  const inclusion = await api<InclusionAnswer>('GET', `/audit/proofs/inclusion?serial=${encodeURIComponent(serial)}&size=${checkpoint.size}`);
  return verifyRecord({ serial, inclusion, checkpoint: checkpoint.note, verifierKey: pinned ?? key.verifierKey, keys: served.keys, origin: key.origin });
}

export const FAILURE_TEXT: Record<string, string> = {
  VERIFIER_KEY_CHANGED: '検証鍵が、このブラウザーで前回使ったものから変わっています。運営者が公表している検証鍵と照らし合わせてください。',
  VERIFIER_KEY_MALFORMED: '検証鍵の形式が正しくありません。',
  CHECKPOINT_MALFORMED: '署名済みチェックポイントの形式が正しくありません。',
  CHECKPOINT_NOT_SIGNED: '署名済みチェックポイントに、検証鍵による署名がありません。',
  CHECKPOINT_SIGNATURE_INVALID: '署名済みチェックポイントの署名（Ed25519）が正しくありません。チェックポイントが改ざんされているか、別の鍵で署名されています。',
  CHECKPOINT_ORIGIN_MISMATCH: '署名済みチェックポイントが、別の台帳のものです。',
  KEY_CHAIN_INVALID:
    '運営者が示した検証鍵の一覧が、このブラウザーが最初に確かめた検証鍵からの正しい引き継ぎになっていません（新しい鍵が前の鍵に告知されていないか、引き継ぎのチェックポイントに両方の鍵の署名がありません）。この鍵の一覧は信用できないため、検証できませんでした。',
  CHECKPOINT_KEY_UNANNOUNCED: '署名済みチェックポイントが、台帳がその件数に告知した検証鍵で署名されていません。',
  CHECKPOINT_HANDOVER_UNSIGNED: '検証鍵の引き継ぎのチェックポイントに、前の検証鍵の署名がありません。',
  SIZE_MISMATCH: '証明の木の大きさが、署名済みチェックポイントと一致しません。',
  REPORTED_ROOT_MISMATCH: '証明とともに示された根ハッシュが、署名済みチェックポイントの根と一致しません。',
  NO_EVENTS: 'この処理通番の記録が証明に含まれていません。',
  ENVELOPE_MALFORMED: '台帳に記録された内容を読み取れません。',
  ENVELOPE_NOT_OF_SERIAL: '証明に含まれる記録が、この処理通番のものではありません。',
  LEAF_MISMATCH: '台帳に記録された内容が、木の葉のハッシュと一致しません（記録が書き換えられています）。',
  PATH_MALFORMED: '包含証明（葉から根への経路）の形式が正しくありません。',
  ROOT_MISMATCH: '記録から包含証明をたどって計算した根ハッシュが、署名済みチェックポイントの根と一致しません（記録か経路が書き換えられています）。',
  OPENING_MISMATCH: 'あなたに関する項目の開示値が、記録に含まれるコミットメントと一致しません。',
};
