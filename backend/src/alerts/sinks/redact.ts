/**
 * A sink target as it may appear in logs and error messages: scheme, host and port only.
 * Webhook URLs often carry their secret in the path or query (Slack incoming webhooks,
 * `?key=` parameters) or in user info, so none of those are ever logged.
 */
export function loggableTarget(target: string | undefined): string | undefined {
  if (target === undefined) return undefined;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return target.replace(/^[^@/]*@/, ''); // HOST:PORT or a file path
  try {
    const url = new URL(target);
    const rest = url.pathname !== '/' || url.search ? '/…' : '';
    return `${url.protocol}//${url.host}${rest}`;
  } catch {
    return '(unparsable URL)';
  }
}
