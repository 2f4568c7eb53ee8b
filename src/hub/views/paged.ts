/** A page of a list, as every list of the API answers it (the services API's shape). */
export type Paged<T> = { items: T[]; total: number; offset: number; limit: number };

/** `items[offset, offset + limit)` with the total. */
export function paged<T>(items: readonly T[], page: { offset: number; limit: number }): Paged<T> {
  return { items: items.slice(page.offset, page.offset + page.limit), total: items.length, ...page };
}
