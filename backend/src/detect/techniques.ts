/**
 * MITRE ATT&CK techniques an operation points to. Only cloud techniques that fit what conduct can
 * see are mapped; anything else maps to nothing.
 */

export const T_CLOUD_INFRASTRUCTURE_DISCOVERY = 'T1580';
export const T_CLOUD_STORAGE_DISCOVERY = 'T1619';
export const T_CLOUD_ACCOUNT_DISCOVERY = 'T1087.004';
export const T_CLOUD_GROUPS_DISCOVERY = 'T1069.003';
export const T_DATA_FROM_CLOUD_STORAGE = 'T1530';
export const T_VALID_CLOUD_ACCOUNTS = 'T1078.004';
export const T_EXFILTRATION_OVER_WEB_SERVICE = 'T1567';
export const T_LATERAL_MOVEMENT_CLOUD_SERVICES = 'T1021.007';

const RULES: [RegExp, string][] = [
  [/list_?buckets|list_?objects|storage\.(buckets|objects)\.list|headbucket|getbucket(acl|policy|location)|list.*containers|list.*blobs/i, T_CLOUD_STORAGE_DISCOVERY],
  [/getobject|storage\.objects\.get|download|get.*blob/i, T_DATA_FROM_CLOUD_STORAGE],
  [/list_?users|list_?roles|getaccountauthorizationdetails|list_?serviceaccounts|list_?accounts|get_?user|list.*access_?keys/i, T_CLOUD_ACCOUNT_DISCOVERY],
  [/list_?groups|list_?(attached|role|user|group)?_?policies|get_?iam_?policy|getiampolicy|list.*bindings|iam.*binding|getpolicy/i, T_CLOUD_GROUPS_DISCOVERY],
  [/^describe|list_?instances|instances\.list|list_?clusters|list_?vpcs|list_?subnets|describe(instances|volumes|snapshots|securitygroups)/i, T_CLOUD_INFRASTRUCTURE_DISCOVERY],
];

/** Techniques suggested by one operation name (HTTP routes are matched on their last segment too). */
export function techniquesForOperation(operation: string): string[] {
  const last = operation.split(/[\s/]/).filter(Boolean).pop() ?? operation;
  const out: string[] = [];
  for (const [re, t] of RULES) if (re.test(operation) || re.test(last)) out.push(t);
  return out;
}

export function techniquesForOperations(operations: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const op of operations) for (const t of techniquesForOperation(op)) out.add(t);
  return [...out];
}
