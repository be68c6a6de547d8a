/**
 * The required attributes of OCSF class 2004 (Detection Finding), collected from the OCSF schema
 * sources (ocsf/ocsf-schema: events/base_event.json and its classification/occurrence traits,
 * events/findings/finding.json, objects/finding_info.json, objects/metadata.json,
 * objects/product.json), taking the stricter of v1.2.0 and the current 1.8/1.9 line (finding_info.title
 * and product.vendor_name were required in 1.x before becoming recommended), plus the
 * "at least one of" constraints of the objects conduct fills in.
 */

type Json = Record<string, unknown>;

const REQUIRED: Record<string, string[]> = {
  '': ['activity_id', 'category_uid', 'class_uid', 'type_uid', 'severity_id', 'time', 'metadata', 'finding_info'],
  metadata: ['product', 'version'],
  'metadata.product': ['vendor_name'],
  finding_info: ['uid', 'title'],
};

const AT_LEAST_ONE: Record<string, string[]> = {
  actor: ['process', 'user', 'iam_role', 'invoked_by', 'session', 'app_name', 'app_uid'],
  'actor.user': ['account', 'name', 'uid'],
  'evidences[]': ['actor', 'api', 'connection_info', 'data', 'database', 'databucket', 'device', 'dst_endpoint', 'file', 'process', 'query', 'src_endpoint', 'url', 'user'],
  'finding_info.attacks[]': ['tactic', 'technique', 'sub_technique'],
};

function at(obj: unknown, path: string): unknown[] {
  if (path === '') return [obj];
  let current: unknown[] = [obj];
  for (const part of path.split('.')) {
    const array = part.endsWith('[]');
    const key = array ? part.slice(0, -2) : part;
    current = current.flatMap((o) => {
      const v = o && typeof o === 'object' ? (o as Json)[key] : undefined;
      if (v === undefined) return [];
      return array ? (Array.isArray(v) ? v : [v]) : [v];
    });
  }
  return current;
}

const present = (v: unknown) => v !== undefined && v !== null && v !== '';

/** Problems with `finding` as a class 2004 event; empty when it satisfies the schema's requirements. */
export function checkDetectionFinding(finding: Json): string[] {
  const problems: string[] = [];
  for (const [path, keys] of Object.entries(REQUIRED)) {
    const objects = at(finding, path);
    if (objects.length === 0) problems.push(`${path} is missing`);
    for (const o of objects) for (const k of keys) if (!present((o as Json)[k])) problems.push(`${path ? `${path}.` : ''}${k} is required`);
  }
  for (const [path, keys] of Object.entries(AT_LEAST_ONE)) {
    for (const o of at(finding, path)) if (!keys.some((k) => present((o as Json)[k]))) problems.push(`${path} needs one of ${keys.join(', ')}`);
  }
  if (finding.class_uid !== 2004) problems.push('class_uid must be 2004');
  if (finding.category_uid !== 2) problems.push('category_uid must be 2 (Findings)');
  if (finding.type_uid !== 2004 * 100 + (finding.activity_id as number)) problems.push('type_uid must be class_uid * 100 + activity_id');
  if (![1, 2, 3, 4, 5, 6, 99].includes(finding.severity_id as number)) problems.push('severity_id out of range');
  if (typeof finding.time !== 'number' || !Number.isInteger(finding.time)) problems.push('time must be epoch milliseconds');
  return problems;
}
