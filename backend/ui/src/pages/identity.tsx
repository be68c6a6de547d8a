import { learningProgress, type IdentityDetail } from '../api-types.js';
import { api } from '../api.js';
import { AlertTable } from '../components/alert-table.js';
import { Ids, Loading, Problem, Section, Time } from '../components/bits.js';
import { ChainTimeline } from '../components/chain.js';
import { EntryList } from '../components/entry-list.js';
import { GraphSection } from '../components/graph-section.js';
import { entries } from '../baseline.js';
import { useApi } from '../hooks.js';

const ALERT_POLL_MS = 3000;
const CHAINS_SHOWN = 10;

/** Declared context (policy config) beside what the identity was seen doing (its baseline). */
const COMPARISONS: { title: string; declared: string; observed: string[] }[] = [
  { title: 'Peers', declared: 'expectedPeers', observed: ['peers'] },
  { title: 'Targets', declared: 'approvedTargets', observed: ['targets', 'accounts'] },
  { title: 'Regions / sources', declared: 'allowedRegions', observed: ['sources', 'regions'] },
  { title: 'Operations', declared: 'deniedOperations', observed: ['operations'] },
];

function PolicyBeside(props: { identity: IdentityDetail }) {
  const baseline = props.identity.baseline ?? {};
  const declared = props.identity.policy ?? baseline.policy;
  const policy = declared && typeof declared === 'object' ? (declared as Record<string, unknown>) : null;
  return (
    <div>
      {policy ? (
        <p>
          <strong>Purpose: </strong>
          {typeof policy.purpose === 'string' ? policy.purpose : <span class="muted">not stated</span>}
        </p>
      ) : (
        <p class="muted">No declared context matches this identity (the `policies` config). Observed behaviour only.</p>
      )}
      <table class="table compare">
        <thead>
          <tr>
            <th />
            <th>declared</th>
            <th>observed</th>
          </tr>
        </thead>
        <tbody>
          {COMPARISONS.map((c) => (
            <tr key={c.title}>
              <th scope="row">
                {c.title}
                {c.declared === 'deniedOperations' && <div class="muted">declared: denied</div>}
              </th>
              <td>
                <EntryList entries={entries(policy?.[c.declared])} empty={policy ? 'not declared' : '—'} />
              </td>
              <td>
                <EntryList entries={c.observed.flatMap((k) => entries(baseline[k]))} empty="nothing learned yet" />
              </td>
            </tr>
          ))}
          {policy && Array.isArray(policy.sensitiveOperations) && (
            <tr>
              <th scope="row">Sensitive operations</th>
              <td>
                <EntryList entries={entries(policy.sensitiveOperations)} />
              </td>
              <td />
            </tr>
          )}
        </tbody>
      </table>
      {entries(baseline.shapes).length > 0 && (
        <details>
          <summary>Learned chain shapes</summary>
          <EntryList entries={entries(baseline.shapes)} />
        </details>
      )}
      {entries(baseline.transitions).length > 0 && (
        <details>
          <summary>Learned transitions between operations</summary>
          <EntryList entries={entries(baseline.transitions)} />
        </details>
      )}
    </div>
  );
}

export function IdentityPage(props: { id: string }) {
  const identity = useApi(() => api.identity(props.id), [props.id]);
  const chains = useApi(() => api.chains(props.id, { limit: CHAINS_SHOWN }), [props.id]);
  const alerts = useApi(() => api.alerts({ identity: props.id, limit: 50 }), [props.id], ALERT_POLL_MS);
  const i = identity.data;

  return (
    <main>
      <h1 class="mono" data-testid="identity-id">
        <Ids text={props.id} />
      </h1>
      <Problem error={identity.error} what="identity" />
      <Loading when={identity.loading && !i} />
      {i && (
        <dl class="facts">
          {i.displayName && i.displayName !== i.id && (
            <div>
              <dt>name</dt>
              <dd>{i.displayName}</dd>
            </div>
          )}
          <div>
            <dt>kind</dt>
            <dd>{i.kind}</dd>
          </div>
          <div>
            <dt>state</dt>
            <dd data-testid="identity-state">
              {i.status}
              {i.status === 'learning' && ` (${Math.round(learningProgress(i) * 100)}%)`}
              {i.compromised && <span class="badge sev-critical">compromised</span>}
            </dd>
          </div>
          <div>
            <dt>calls</dt>
            <dd>{i.calls}</dd>
          </div>
          <div>
            <dt>peers</dt>
            <dd>{i.peers}</dd>
          </div>
          <div>
            <dt>first seen (event time)</dt>
            <dd>
              <Time value={i.firstSeen} />
            </dd>
          </div>
          <div>
            <dt>last seen (event time)</dt>
            <dd>
              <Time value={i.lastSeen} />
            </dd>
          </div>
        </dl>
      )}

      {i && <GraphSection identity={props.id} lastSeen={i.lastSeen} />}

      <Section title="Alerts">
        <Problem error={alerts.error} what="alerts" />
        {alerts.data && <AlertTable alerts={alerts.data} />}
      </Section>
      <Section title="Declared context and observed behaviour">{i && <PolicyBeside identity={i} />}</Section>

      <Section title="Recent chains">
        <Problem error={chains.error} what="chains" />
        <Loading when={chains.loading && !chains.data} />
        {chains.data?.length === 0 && <p class="muted">No chains stored.</p>}
        {chains.data?.map((c) => <ChainTimeline chain={c} showTrace key={c.traceId ?? c.startMs} />)}
      </Section>
    </main>
  );
}
