// The browser client as an ES module: import { AkvGateway } from '/akv.mjs'. The code lives in
// akv.js (a classic script that defines globalThis.AkvGateway); see its header for the API.
import './akv.js';

export const AkvGateway = globalThis.AkvGateway;
export default AkvGateway;
