#ifndef MISS_CNCURSES_SHIM_H
#define MISS_CNCURSES_SHIM_H
#define _XOPEN_SOURCE_EXTENDED 1
#include <locale.h>
#include <ncurses.h>

// Swift 6 strict concurrency rejects mutable C globals; read them through these getters.
static inline WINDOW *miss_stdscr(void) { return stdscr; }
static inline int miss_lines(void) { return LINES; }
static inline int miss_cols(void) { return COLS; }
static inline int miss_colors(void) { return COLORS; }
static inline int miss_color_pairs(void) { return COLOR_PAIRS; }
static inline int miss_attr_bold(void) { return A_BOLD; }
static inline int miss_attr_reverse(void) { return A_REVERSE; }
static inline int miss_attr_dim(void) { return A_DIM; }
static inline int miss_attr_underline(void) { return A_UNDERLINE; }
static inline int miss_color_pair(int n) { return COLOR_PAIR(n); }
static inline int miss_key_code_yes(void) { return KEY_CODE_YES; }
#endif
