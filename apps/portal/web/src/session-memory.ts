// What this browser tab remembers about its sign-in (nothing secret: the session token is in an HttpOnly cookie).

const PASSKEY_IN_USE = 'linkage-ledger.portal.passkey-in-use';

/** The passkey this browser signed in with (not secret: it names which one the list should mark). */
export function passkeyInUse(): string | null {
  try {
    return sessionStorage.getItem(PASSKEY_IN_USE);
  } catch {
    return null;
  }
}

export function rememberPasskey(id: string | undefined): void {
  try {
    if (id === undefined) sessionStorage.removeItem(PASSKEY_IN_USE);
    else sessionStorage.setItem(PASSKEY_IN_USE, id);
  } catch {
    // storage unavailable: the list just marks nothing
  }
}
