export { SealedAnswerError } from './errors.js';
export type { SealedAnswerErrorCode } from './errors.js';
export { fromBase64url, toBase64url } from './base64url.js';
export { ANSWER_INFO, ENC_LENGTH, answerPublicKeyOf, generateAnswerKeyPair, openAnswer, sealAnswer, x25519PrivateKey, x25519PublicKey } from './sealed-answer.js';
export type { AnswerKeyPair } from './sealed-answer.js';
