# cmake -DIN=file.h -DOUT=file.inc -DNAME=symbol -P embed.cmake
# Writes `static const char *const NAME[] = {"line\n", ..., 0};` holding the
# text of IN line by line, so a C header can be both compiled into ryft and
# pasted into generated code.
file(READ "${IN}" text)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\",\n    \"" text "${text}")
file(WRITE "${OUT}.tmp" "/* generated from ${IN} by cmake/embed.cmake; do not edit */\nstatic const char *const ${NAME}[] = {\n    \"${text}\",\n    0};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
