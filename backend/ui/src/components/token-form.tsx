import { useState } from 'preact/hooks';
import { setToken } from '../auth.js';

/** Asked once when the API answers 401; the token is kept in sessionStorage for this tab. */
export function TokenForm(props: { rejected: boolean }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="card token-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) setToken(value.trim());
      }}
    >
      <h2>API token</h2>
      <p>This conduct requires a token (the <code>api.token</code> setting). It is kept for this browser tab only.</p>
      {props.rejected && (
        <p class="problem" role="alert">
          That token was not accepted.
        </p>
      )}
      <label>
        Token{' '}
        <input
          type="password"
          name="token"
          autocomplete="off"
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
          autoFocus
        />
      </label>{' '}
      <button type="submit">Continue</button>
    </form>
  );
}
