import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** An answer other than 200, carried to the one error handler and sent as `{"error": message}`. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
  ) {
    super(message);
  }
}
