/**
 * The little the PostgreSQL store needs from a client library, so that the store's modules read
 * the same whichever library is underneath (connection.ts adapts `pg`). Values are always bound
 * (`$1`, `$2`...), never spliced into the text.
 */
export interface Queryable {
  /** Runs one statement and resolves with its rows. */
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<R[]>;
}

export interface Sql extends Queryable {
  /** Runs `fn` on one connection between BEGIN and COMMIT; ROLLBACK when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Closes every connection; queries after it reject. */
  end(): Promise<void>;
}
