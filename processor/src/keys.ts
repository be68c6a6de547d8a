/**
 * The ids (see `attributeKeyId` in @conduct/proto) of the semantic-convention keys of semconv.ts:
 * `K.HTTP_ROUTE` is the id `http.route` is stored under in a request's columns, `K.HTTP_METHOD_KEYS`
 * the ids of that list. Resolved once, when the module loads.
 */
import { attributeKeyId, ObjectAttrs, type Attributes } from '@conduct/proto';
import * as sc from './semconv.js';

type KeyIds<T> = { readonly [P in keyof T]: T[P] extends string ? number : readonly number[] };

export const K = Object.fromEntries(
  Object.entries(sc).map(([name, value]) => [name, typeof value === 'string' ? attributeKeyId(value) : (value as readonly string[]).map(attributeKeyId)]),
) as unknown as KeyIds<typeof sc>;

/** An attributes object read as the columns are read (tests, requests handed over decoded). */
export function objectAttrs(record: Attributes): ObjectAttrs {
  return new ObjectAttrs(record, sc.PRESENCE_PREFIXES);
}
