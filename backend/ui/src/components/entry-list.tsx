import type { Entry } from '../baseline.js';

export function EntryList(props: { entries: Entry[]; empty?: string }) {
  if (props.entries.length === 0) return <p class="muted">{props.empty ?? 'none'}</p>;
  return (
    <ul class="entries">
      {props.entries.map((e, i) => (
        <li key={i}>
          <span class="mono">{e.label}</span>
          {e.count !== undefined && <span class="count">{e.count}</span>}
        </li>
      ))}
    </ul>
  );
}
