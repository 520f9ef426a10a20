export { displayTextProblem, isDisplayTextUnder } from './display-text.js';
export type { DisplayTextFault, DisplayTextProblem, DisplayTextRule } from './display-text.js';
