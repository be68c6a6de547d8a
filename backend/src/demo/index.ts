export { runDemo, judge, formatAlert, demoConfigInput, EXAMPLES_DIR, DEFAULT_LEARNING_MINUTES, DEMO_MIN_CALLS, DEMO_LEARNING_PERIOD } from './demo.js';
export type { DemoOptions, DemoResult, ScenarioResult, ScenarioExpectation } from './demo.js';
export { registerDemoCommand, runDemoCommand } from './command.js';
export type { DemoFlags, DemoCommandDeps } from './command.js';
