// Starts the app in production mode: a master and WORKERS worker processes.
const path = require('path');
const Application = require('thinkjs');

new Application({
  ROOT_PATH: __dirname,
  APP_PATH: path.join(__dirname, 'src'),
  env: 'production'
}).run();
