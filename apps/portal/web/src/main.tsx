import '@digital-go-jp/design-tokens/dist/tokens.css';
import './styles.css';
import { render } from 'preact';
import { App } from './app.js';

render(<App />, document.getElementById('app')!);
