// What a citizen reads when something fails: what happened and what to do next, in Japanese.
import { ApiError } from './api.js';

const MESSAGES: Record<string, string> = {
  NETWORK: 'ポータルに接続できませんでした。インターネット接続を確かめてから、もう一度お試しください。',
  NOT_SIGNED_IN: 'サインインしていません。パスキーでサインインしてください。',
  SESSION_EXPIRED: 'セッションが終了しました（一定時間操作がなかったか、サインアウトしました）。もう一度パスキーでサインインしてください。',
  UNAUTHENTICATED: 'ワンタイムシークレットが正しくありません。マイナンバーの通知に記載されたシークレットを、もう一度確かめて入力してください。',
  CREDENTIAL_RETIRED: 'このワンタイムシークレットは、すでにパスキーの登録に使われたため使えません。登録したパスキーでサインインしてください。パスキーをすべて失くした場合は、お住まいの市区町村の窓口で新しいシークレットの発行を受けてください。',
  CREDENTIAL_REVOKED: 'このワンタイムシークレットは無効になっています。お住まいの市区町村の窓口で新しいシークレットの発行を受けてください。',
  PASSKEY_VERIFICATION_FAILED: 'パスキーを確認できませんでした。このポータルに登録したパスキーを選んで、もう一度お試しください。まだ登録していない場合は「はじめての登録」から登録してください。',
  PASSKEY_REGISTRATION_FAILED: 'パスキーを登録できませんでした。このポータルのアドレス（localhost など）を直接開いたまま、もう一度登録をお試しください。同じ端末のパスキーがすでに登録されている場合は、登録済みのパスキーでサインインしてください。',
  CHALLENGE_EXPIRED: '手続きの有効時間（5分）が過ぎました。もう一度、最初からお試しください。',
  UNKNOWN_CHALLENGE: '手続きの有効時間が過ぎたか、すでに使われています。もう一度、最初からお試しください。',
  UNKNOWN_PASSKEY: 'このパスキーはすでに削除されています。一覧を更新してください。',
  UNKNOWN_NOTICE: 'このお知らせは見つかりませんでした。一覧を更新してください。',
  SELF_DISCLOSURE_NOT_ALLOWED: 'この機関のこの項目は、自己情報表示の対象ではありません。ほかの項目を選んでください。',
  NO_AGENCY_CODE: 'この機関はあなたの情報を保有していないため、表示できません。ほかの機関を選んでください。',
  PROVIDER_TIMEOUT: '情報を保有する機関から時間内に回答がありませんでした。時間をおいて、もう一度お試しください。',
  PROVIDER_UNREACHABLE: '情報を保有する機関のシステムに接続できませんでした。時間をおいて、もう一度お試しください。',
  PROVIDER_PROTOCOL_ERROR: '情報を保有する機関のシステムから正しい回答が得られませんでした。時間をおいて、もう一度お試しください。解決しない場合は、その機関にお問い合わせください。',
  ANSWER_TOO_LARGE: '回答が大きすぎるため、ここでは表示できません。その機関の窓口で開示を請求してください。',
  SELF_DISCLOSURE_TABLE_NOT_IN_FORCE: 'ただいま自己情報表示を受け付けていません。時間をおいて、もう一度お試しください。',
  UNKNOWN_PROVIDER: 'この機関は登録されていません。一覧を更新して、ほかの機関を選んでください。',
  PROVIDER_REVOKED: 'この機関は現在、情報連携を停止しています。その機関の窓口にお問い合わせください。',
  PROVISION_REFUSED: '情報を保有する機関が回答を断りました。内容については、その機関にお問い合わせください。',
  HUB_UNAVAILABLE: 'ただいま情報提供ネットワークシステムに接続できません。時間をおいて、もう一度お試しください。',
  HUB_TIMEOUT: '情報提供ネットワークシステムから時間内に応答がありませんでした。時間をおいて、もう一度お試しください。',
  TOO_MANY_UNAUTHENTICATED_REQUESTS: 'アクセスが集中しています。しばらく待ってから、もう一度お試しください。',
  TOO_MANY_ATTEMPTS: '失敗が続いたため、しばらく受け付けを止めています。1分ほど待ってから、もう一度お試しください。',
  CSRF_TOKEN_INVALID: 'ページの有効期限が切れました。ページを再読み込みしてから、もう一度お試しください。',
  ORIGIN_REFUSED: 'このページからは操作できません。ポータルのアドレスを直接開いて、もう一度お試しください。',
  VALIDATION_FAILED: '入力内容に誤りがあります。入力欄を確かめて、もう一度お試しください。',
  SIZE_OUT_OF_RANGE: 'この記録は、まだ署名済みの記録（チェックポイント）に含まれていません。10秒ほど待ってから、もう一度検証してください。',
  CHECKPOINT_NOT_FOUND: '署名済みの記録（チェックポイント）がまだありません。10秒ほど待ってから、もう一度お試しください。',
  TREE_SIZE_NOT_REACHED: '署名済みの記録（チェックポイント）の準備中です。10秒ほど待ってから、もう一度お試しください。',
  SERIAL_UNKNOWN: 'この処理通番の記録は見つかりませんでした。一覧を更新してください。',
  NOT_FOUND: 'この機能は、まだ情報提供ネットワークシステムで提供されていません。時間をおいて、もう一度お試しください。',
  ANSWER_DECRYPTION_FAILED: '回答を復号できませんでした（途中で変更されたか、別の鍵あてに暗号化されています）。もう一度請求してください。',
};

/** A sentence for an error; the serial (処理通番) when the refusal was recorded under one. */
export function messageFor(error: unknown): string {
  if (error instanceof ApiError) {
    let text = MESSAGES[error.code] ?? `エラーが発生しました（コード: ${error.code}）。時間をおいて、もう一度お試しください。解決しない場合は、このコードを添えてお問い合わせください。`;
    if ((error.code === 'TOO_MANY_UNAUTHENTICATED_REQUESTS' || error.code === 'TOO_MANY_ATTEMPTS') && error.retryAfter !== undefined) text = `アクセスが集中しています。${error.retryAfter}秒ほど待ってから、もう一度お試しください。`;
    return error.serial === undefined ? text : `${text}（処理通番: ${error.serial}）`;
  }
  if (error instanceof DOMException || (error instanceof Error && typeof (error as { name?: unknown }).name === 'string')) {
    const name = (error as Error).name;
    const code = (error as { code?: unknown }).code;
    if (code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED' || name === 'InvalidStateError') return 'この端末のパスキーは、すでに登録されています。「サインイン」からサインインしてください。';
    if (name === 'NotAllowedError' || code === 'ERROR_CEREMONY_ABORTED') return 'パスキーの操作が取り消されたか、時間切れになりました。もう一度お試しください。';
    if (name === 'NotSupportedError' || name === 'SecurityError') return 'このブラウザーまたは端末ではパスキーを利用できません。パスキーに対応したブラウザーでお試しください。';
  }
  return 'エラーが発生しました。ページを再読み込みして、もう一度お試しください。';
}
