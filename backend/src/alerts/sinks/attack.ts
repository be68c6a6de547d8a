/**
 * MITRE ATT&CK (Enterprise) names and primary tactics of the techniques conduct's detectors are
 * likely to cite, so OCSF and other sinks can say more than the bare id. Ids not listed are passed
 * on with the id alone.
 */

export interface Tactic {
  uid: string;
  name: string;
}

const TA = {
  initialAccess: { uid: 'TA0001', name: 'Initial Access' },
  execution: { uid: 'TA0002', name: 'Execution' },
  persistence: { uid: 'TA0003', name: 'Persistence' },
  privilegeEscalation: { uid: 'TA0004', name: 'Privilege Escalation' },
  defenseEvasion: { uid: 'TA0005', name: 'Defense Evasion' },
  credentialAccess: { uid: 'TA0006', name: 'Credential Access' },
  discovery: { uid: 'TA0007', name: 'Discovery' },
  lateralMovement: { uid: 'TA0008', name: 'Lateral Movement' },
  collection: { uid: 'TA0009', name: 'Collection' },
  exfiltration: { uid: 'TA0010', name: 'Exfiltration' },
  impact: { uid: 'TA0040', name: 'Impact' },
} satisfies Record<string, Tactic>;

export interface Technique {
  name: string;
  tactic: Tactic;
}

export const TECHNIQUES: Readonly<Record<string, Technique>> = {
  T1021: { name: 'Remote Services', tactic: TA.lateralMovement },
  'T1021.007': { name: 'Cloud Services', tactic: TA.lateralMovement },
  T1041: { name: 'Exfiltration Over C2 Channel', tactic: TA.exfiltration },
  T1046: { name: 'Network Service Discovery', tactic: TA.discovery },
  T1059: { name: 'Command and Scripting Interpreter', tactic: TA.execution },
  T1069: { name: 'Permission Groups Discovery', tactic: TA.discovery },
  'T1069.003': { name: 'Cloud Groups', tactic: TA.discovery },
  T1078: { name: 'Valid Accounts', tactic: TA.defenseEvasion },
  'T1078.004': { name: 'Cloud Accounts', tactic: TA.defenseEvasion },
  T1087: { name: 'Account Discovery', tactic: TA.discovery },
  'T1087.004': { name: 'Cloud Account', tactic: TA.discovery },
  T1098: { name: 'Account Manipulation', tactic: TA.persistence },
  T1136: { name: 'Create Account', tactic: TA.persistence },
  'T1136.003': { name: 'Cloud Account', tactic: TA.persistence },
  T1190: { name: 'Exploit Public-Facing Application', tactic: TA.initialAccess },
  T1199: { name: 'Trusted Relationship', tactic: TA.initialAccess },
  T1210: { name: 'Exploitation of Remote Services', tactic: TA.lateralMovement },
  T1213: { name: 'Data from Information Repositories', tactic: TA.collection },
  T1485: { name: 'Data Destruction', tactic: TA.impact },
  T1496: { name: 'Resource Hijacking', tactic: TA.impact },
  T1498: { name: 'Network Denial of Service', tactic: TA.impact },
  T1526: { name: 'Cloud Service Discovery', tactic: TA.discovery },
  T1528: { name: 'Steal Application Access Token', tactic: TA.credentialAccess },
  T1530: { name: 'Data from Cloud Storage', tactic: TA.collection },
  T1537: { name: 'Transfer Data to Cloud Account', tactic: TA.exfiltration },
  T1538: { name: 'Cloud Service Dashboard', tactic: TA.discovery },
  T1550: { name: 'Use Alternate Authentication Material', tactic: TA.defenseEvasion },
  'T1550.001': { name: 'Application Access Token', tactic: TA.defenseEvasion },
  T1552: { name: 'Unsecured Credentials', tactic: TA.credentialAccess },
  'T1552.005': { name: 'Cloud Instance Metadata API', tactic: TA.credentialAccess },
  T1567: { name: 'Exfiltration Over Web Service', tactic: TA.exfiltration },
  T1580: { name: 'Cloud Infrastructure Discovery', tactic: TA.discovery },
  T1619: { name: 'Cloud Storage Object Discovery', tactic: TA.discovery },
  T1648: { name: 'Serverless Execution', tactic: TA.execution },
};

/** An OCSF `attack` object for one technique id (`T1234` or `T1234.001`). */
export function ocsfAttack(id: string): Record<string, unknown> {
  const known = TECHNIQUES[id];
  const dot = id.indexOf('.');
  if (dot > 0) {
    const parentId = id.slice(0, dot);
    const parent = TECHNIQUES[parentId];
    return {
      technique: parent ? { uid: parentId, name: parent.name } : { uid: parentId },
      sub_technique: known ? { uid: id, name: known.name } : { uid: id },
      ...(known ? { tactic: known.tactic } : parent ? { tactic: parent.tactic } : {}),
    };
  }
  return { technique: known ? { uid: id, name: known.name } : { uid: id }, ...(known ? { tactic: known.tactic } : {}) };
}
