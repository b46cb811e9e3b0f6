// GNU readline and history. Only Sources/charlm/ReadlineLineSource.swift imports this module. Readline's settings
// are global C variables; these accessors keep them out of Swift, whose strict concurrency checking rejects
// mutable C globals.
#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>

typedef char **(*charlm_completer)(const char *text, int start, int end);

static inline void charlm_readline_configure(const char *name, charlm_completer completer) {
    rl_readline_name = name;
    rl_completer_word_break_characters = " \t";
    rl_attempted_completion_function = completer;
}

static inline const char *charlm_readline_line(void) { return rl_line_buffer; }

/// The history list: how many entries, and entry i (0 = the oldest kept), or NULL.
static inline int charlm_history_count(void) { return history_length; }
static inline const char *charlm_history_entry(int i) {
    HIST_ENTRY *entry = history_get(history_base + i);
    return entry ? entry->line : NULL;
}
static inline int charlm_readline_point(void) { return rl_point; }

/// Tells readline the candidates are final (no file-name fallback) and what to append after a single match.
static inline void charlm_readline_completion_done(int append_character) {
    rl_attempted_completion_over = 1;
    rl_completion_append_character = append_character;
}

// Ctrl-C, SIGTERM and SIGHUP. The handlers only set flags (async-signal-safe); the session polls them between
// training steps and generated characters. While readline waits for a key, `charlm_getc` reads it: a read
// interrupted by Ctrl-C empties the line and draws a fresh prompt (readline keeps reading, so no typed-ahead key is
// lost); one interrupted by SIGTERM or SIGHUP empties the line and reports end of input, so readline returns NULL
// and the session ends (readline's own getc would retry the read and wait for the next key).
//
// The flags are `static`: one copy in each compiled file that calls these functions. Only
// Sources/charlm/ReadlineLineSource.swift does, so there is one copy; keep it that way.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t charlm_interrupt_flag = 0;
// SIGTERM or SIGHUP (a `kill`, a closed terminal): the long work stops as for Ctrl-C (the step finishes, autosave
// runs), then charlm leaves with 128 + the signal's number. Its number, once one came.
static volatile sig_atomic_t charlm_termination_signal = 0;

static void charlm_sigint_handler(int signal_number) {
    (void)signal_number;
    charlm_interrupt_flag = 1;
}

static void charlm_termination_handler(int signal_number) {
    charlm_termination_signal = signal_number;
}

/// Readline's key reader: one byte from `stream`, or EOF at its end, on a read error, or once SIGTERM or SIGHUP came.
static inline int charlm_getc(FILE *stream) {
    for (;;) {
        if (charlm_termination_signal) {
            rl_replace_line("", 0);  // a half-typed line is not run
            return EOF;
        }
        unsigned char byte;
        ssize_t count = read(fileno(stream), &byte, 1);
        if (count == 1) return byte;
        if (count == 0 || errno != EINTR) return EOF;
        if (charlm_interrupt_flag && !charlm_termination_signal) {
            charlm_interrupt_flag = 0;
            rl_replace_line("", 0);
            fputs("^C\n", rl_outstream ? rl_outstream : stdout);
            rl_on_new_line();
            rl_redisplay();
        }
    }
}

static inline void charlm_install_interrupt_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = charlm_sigint_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: a blocked read returns so charlm_getc can act
    sigaction(SIGINT, &action, NULL);
    action.sa_handler = charlm_termination_handler;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    // A file past `ulimit -f` makes write() fail with EFBIG, reported like a full disk, instead of killing us.
    signal(SIGXFSZ, SIG_IGN);
    // A closed pipe makes write() fail with EPIPE, reported as a failed write, instead of killing us.
    signal(SIGPIPE, SIG_IGN);
    // A parent may have started us with these signals blocked; they must reach the handlers.
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &handled, NULL);
    rl_catch_signals = 0;
    rl_getc_function = charlm_getc;
}

// A termination stays pending: clearing Ctrl-C does not clear it, so every long command after it stops at once.
static inline int charlm_interrupt_pending(void) { return charlm_interrupt_flag != 0 || charlm_termination_signal != 0; }
static inline void charlm_interrupt_clear(void) { charlm_interrupt_flag = 0; }
static inline int charlm_termination_signal_number(void) { return charlm_termination_signal; }
