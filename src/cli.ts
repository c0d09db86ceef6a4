#!/usr/bin/env node
console.log('isolane: commands arrive with the labs (bench, crash, escape, advise, report).');
