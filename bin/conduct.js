#!/usr/bin/env node
import '../backend/bin/conduct.js';
