export { DEFAULT_CLUSTER_CONFIG, DEFAULT_LEASE_TIMEOUT_MS, DEFAULT_PARTITIONS, MAX_PARTITIONS, type ClusterConfig } from './config.js';
export { partitionOf, assignPartitions, fnv1a } from './partition.js';
export { createClusterNode, defaultFlushTimeout, FlushIncompleteError, type ClusterNode, type ClusterNodeOptions, type Lagging } from './node.js';
export { clusterView, singleInstanceView, type ClusterView } from './view.js';
