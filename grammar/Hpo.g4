// Hpo.g4: the grammar of .hpo model and library files (ANTLR 4.7); docs/language.md explains it.
grammar Hpo;

// Nesting deeper than this is refused where it happens, through a failing predicate, so that
// hostile input cannot exhaust the stack of the recursive-descent parser.
@parser::members {
  static constexpr std::size_t kMaxNesting = 400;
  bool tooDeep() const {
    std::size_t depth = 0;
    for (antlr4::tree::ParseTree* node = _ctx; node != nullptr; node = node->parent)
      if (++depth > kMaxNesting) return true;
    return false;
  }
}

file        : header? ';'? (item ';'?)* EOF ;
header      : MODEL name=ID                          # modelHeader
            | MODULE dottedName                      # moduleHeader
            ;
dottedName  : ID ('.' ID)* ;

item        : IMPORT dottedName                                              # importItem
            | CONST name=ID '=' expr                                         # constItem
            | PARAM name=ID dims? ('=' expr)?                                # paramItem
            | STATE name=ID dims? '=' expr                                   # stateItem
            | ACTION name=ID dims? ':' actionType                            # actionItem
            | NOISE name=ID dims? '~' dist=ID '(' args? ')'                  # noiseItem
            | OBSERVE expr (',' expr)*                                       # observeItem
            | HORIZON expr                                                   # horizonItem
            | DISCOUNT expr                                                  # discountItem
            | which=(REPORT | TRAIN) PERIODS lo=expr '..' hi=expr            # periodsItem
            | FN name=ID '(' (fnParam (',' fnParam)*)? ')' ('->' typeRef)? fnBody  # fnItem
            | STEP block                                                     # stepItem
            ;

dims        : '[' expr (',' expr)* ']' ;
actionType  : CHOICE '(' expr ')'                                            # choiceType
            | REAL (IN '[' lo=expr ',' hi=expr ']')?                         # realType
            ;
fnParam     : name=ID ':' typeRef ;
typeRef     : base=(REAL | INT | BOOL) dims? ;
fnBody      : '{' (letStmt ';'?)* RETURN expr ';'? '}' ;

block       : '{' (stmt ';'?)* '}' ;
stmt        : letStmt | assignStmt | ifStmt | forStmt ;
letStmt     : LET name=ID '=' expr ;
assignStmt  : target=ID prime='\''? index? op=('=' | '+=') expr ;
ifStmt      : IF {!tooDeep()}? cond=expr then=block (ELSE (otherwise=block | elseIf=ifStmt))? ;
forStmt     : FOR {!tooDeep()}? var=ID IN lo=expr '..' hi=expr body=block ;
index       : '[' {!tooDeep()}? expr (',' expr)* ']' ;
args        : expr (',' expr)* ;

expr        : primary                                                        # primaryExpr
            | expr index                                                     # indexExpr
            | op=('-' | '+' | '!' | NOT) {!tooDeep()}? expr                                # unaryExpr
            | expr op='@' expr                                               # binaryExpr
            | expr op=('*' | '/' | '%') expr                                 # binaryExpr
            | expr op=('+' | '-') expr                                       # binaryExpr
            | expr op=('<' | '<=' | '>' | '>=') expr                         # binaryExpr
            | expr op=('==' | '!=') expr                                     # binaryExpr
            | expr op=(AND | '&&') expr                                      # binaryExpr
            | expr op=(OR | '||') expr                                       # binaryExpr
            | IF {!tooDeep()}? cond=expr THEN then=expr ELSE otherwise=expr                # condExpr
            ;

primary     : INT_LIT                                                        # intLiteral
            | REAL_LIT                                                       # realLiteral
            | (TRUE | FALSE)                                                 # boolLiteral
            | INF                                                            # infLiteral
            | callee=(ID | REAL) '(' {!tooDeep()}? args? ')'                      # callExpr
            | name=ID '\''                                                   # nextStateRef
            | name=ID                                                        # nameRef
            | '(' {!tooDeep()}? expr ')'                                                 # parenExpr
            | '[' {!tooDeep()}? expr FOR var=ID IN lo=expr '..' hi=expr ']'                # comprehension
            | '[' {!tooDeep()}? args ','? ']'                                            # arrayLiteral
            ;

MODEL    : 'model' ;
MODULE   : 'module' ;
IMPORT   : 'import' ;
CONST    : 'const' ;
PARAM    : 'param' ;
STATE    : 'state' ;
ACTION   : 'action' ;
NOISE    : 'noise' ;
OBSERVE  : 'observe' ;
HORIZON  : 'horizon' ;
DISCOUNT : 'discount' ;
REPORT   : 'report' ;
TRAIN    : 'train' ;
PERIODS  : 'periods' ;
STEP     : 'step' ;
FN       : 'fn' ;
RETURN   : 'return' ;
LET      : 'let' ;
IF       : 'if' ;
THEN     : 'then' ;
ELSE     : 'else' ;
FOR      : 'for' ;
IN       : 'in' ;
CHOICE   : 'choice' ;
REAL     : 'real' ;
INT      : 'int' ;
BOOL     : 'bool' ;
TRUE     : 'true' ;
FALSE    : 'false' ;
INF      : 'inf' ;
AND      : 'and' ;
OR       : 'or' ;
NOT      : 'not' ;

ID       : [a-zA-Z_] [a-zA-Z_0-9]* ;
REAL_LIT : DIGITS '.' DIGITS EXPONENT?
         | DIGITS EXPONENT
         ;
INT_LIT  : DIGITS ;
// `1.` (not `1..n`): no rule accepts it, so the parser reports it with a hint.
INCOMPLETE_REAL : DIGITS '.' {_input->LA(1) != '.'}? ;
fragment DIGITS   : [0-9]+ ;
fragment EXPONENT : [eE] [+-]? DIGITS ;

LINE_COMMENT  : '//' ~[\r\n]* -> skip ;
BLOCK_COMMENT : '/*' .*? '*/' -> skip ;
UNTERMINATED_COMMENT : '/*' .*? EOF ;
WS            : [ \t\r\n]+ -> skip ;
// Anything else becomes one token that no rule accepts, so the parser reports it in place.
UNKNOWN_CHAR  : . ;
