import { replaceChildren } from './dom.ts';
import { lang, setLang, t } from './i18n/index.ts';
import { clearToken, loadToken, saveToken, takeTokenFromHash } from './token.ts';
import { ConsoleView } from './views/console.view.ts';
import { signInView } from './views/sign-in.view.ts';

// Entry point: a token from #token=… (then wiped from the URL) or from this tab's sessionStorage
// opens the console; otherwise the sign-in form.
const mount = document.getElementById('app')!;
setLang(lang(), false);
document.title = t('app.title');

const signIn = (problem?: string): void => {
  clearToken();
  replaceChildren(mount, signInView(open, problem));
};

function open(token: string): void {
  saveToken(token);
  replaceChildren(mount, new ConsoleView(token, signIn).root);
}

const token = takeTokenFromHash() ?? loadToken();
if (token) open(token);
else signIn();
