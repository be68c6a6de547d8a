import type { Migration } from '../migration.js';

/**
 * Alerts become incidents (one per identity and trace, findings inside). Every alert stored
 * before is rewritten as a one-finding incident: `detectors` holds its detector and `findings`
 * one finding with the alert's own severity, score, title, explanation, spans, techniques, keys
 * and evidence. Rows already in the new form are left alone. The dedup keys of old alerts are
 * kept: a later repeat of an old finding raises a new incident rather than counting on it.
 */
const migration: Migration = {
  description: 'alerts as incidents: detectors and findings in every alert body',
  up: `
    UPDATE alerts SET body = json_set(body,
      '$.detectors', json_array(detector),
      '$.findings', json_array(json_object(
        'detector', detector,
        'severity', severity,
        'score', json_extract(body, '$.score'),
        'title', json_extract(body, '$.title'),
        'explanation', json_extract(body, '$.explanation'),
        'spanIds', json(coalesce(json_extract(body, '$.spanIds'), '[]')),
        'techniques', json(coalesce(json_extract(body, '$.techniques'), '[]')),
        'keys', json(coalesce(json_extract(body, '$.evidence.keys'), '[]')),
        'evidence', json(coalesce(json_extract(body, '$.evidence'), '{}'))
      )))
    WHERE json_valid(body) AND json_type(body, '$.findings') IS NULL;
  `,
};

export default migration;
