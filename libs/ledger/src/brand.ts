declare const brand: unique symbol;
/** A nominal type: a value of `Brand<string, 'X'>` cannot be passed where `Brand<string, 'Y'>` is expected. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };
