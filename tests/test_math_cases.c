// tests/test_math_cases.c — the math checker on realistic responses and on every form docs/verifiers.md
// lists: extraction order (</think>, \boxed, answer phrases, LaTeX spans, last number), number
// formats, LaTeX forms, structures, relations, symbolic equivalence, multiple choice, units, angles,
// repeating decimals, and near misses that must be judged wrong (a self-corrected first answer, a
// percent sign on a fraction, a reordered list, a rounded decimal for an irrational gold; the
// lenient_decimals option in its own table). Pathological answers (10^{10^{10}}, 1000!, 10,000 nested braces, a 1 MB
// response, ...) must return a verdict; their time is printed here (the 10 ms budget is checked in
// bench/math_bench.py, not asserted).
//   ctest -R test_math_cases
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "rl/math/math_verify.h"
#include "tests/testutil.h"

typedef struct {
    const char *gold, *response;
    int expected;
} case_t;

static const case_t kCases[] = {
    {"42", "<think>Let me compute $x=5$ and then... so 6*7.</think>\n\nThe answer is $\\boxed{42}$.", 1},
    {"5", "First \\boxed{3}. Wait, that is wrong. Recomputing gives \\boxed{5}", 1},
    {"\\frac34", "**Final Answer**\n\\[\n\\boxed{\\dfrac{3}{4}}\n\\]", 1},
    {"\\frac{\\sqrt3}{2}", "The final answer is $\\frac{\\sqrt{3}}{2}$. I hope it is correct.", 1},
    {"12", "Answer: 12", 1},
    {"1234", "She earns 1,000 + 234.\n#### 1,234", 1},
    {"18.5", "So the total is $18.50.", 1},
    {"\\frac12", "... = 0.5", 1},
    {"C", "The answer is (C).", 1},
    {"C", "\\boxed{\\text{(C)}}", 1},
    {"(C)", "\\boxed{C}", 1},
    {"C", "Thus the correct option is C.", 1},
    {"C", "The answer is (D).", 0},
    {"\\text{C}", "so the answer is $\\boxed{\\textbf{(C) } 15}$", 1},
    {"3", "so $x = \\boxed{3}$", 1},
    {"3", "\\boxed{x=3}", 1},
    {"x^2+2x+1", "\\boxed{(x+1)^2}", 1},
    {"x^2+2x+1", "\\boxed{(x+1)^3}", 0},
    {"(1,2)", "\\boxed{(1, 2)}", 1},
    {"[2, 5)", "\\boxed{[2,5)}", 1},
    {"[2, 5)", "\\boxed{[2,5]}", 0},
    {"\\{1,2\\}", "\\boxed{1, 2}", 1},
    {"5", "\\boxed{5 \\text{ cm}}", 1},
    {"\\$5.00", "5", 1},
    {"50\\%", "\\boxed{0.5}", 1},
    {"50\\%", "\\boxed{50}", 1},
    {"0.5", "\\boxed{50\\%}", 1},
    {"\\sqrt{2}/2", "\\boxed{\\frac{1}{\\sqrt{2}}}", 1},
    {"2\\sqrt{2}", "\\boxed{\\sqrt{8}}", 1},
    {"2\\sqrt{2}", "\\boxed{\\sqrt{6}}", 0},
    {"1.5", "\\boxed{3/2}", 1},
    {"\\frac{7}{2}", "\\boxed{3.5}", 1},
    {"10", "\\boxed{10.0}", 1},
    {"10", "\\boxed{9.99}", 0},
    {"-3", "The answer is −3.", 1},
    {"\\frac{1}{2}", "The answer is ½.", 1},
    {"(-\\infty, 2)", "\\boxed{x < 2}", 1},
    {"(-\\infty, 2)", "\\boxed{(-∞, 2)}", 1},
    {"6", "The answer is 6 apples.", 1},
    {"42", "<think> \\boxed{41} </think> The answer is 42", 1},
    {"5", "<think> reasoning... \\boxed{5}", 1},
    {"\\dfrac{1}{4}", "\\boxed{0.25}", 1},
    {"\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", 1},
    {"3+4i", "\\boxed{4i+3}", 1},
    {"1+i", "\\boxed{1-i}", 0},
    {"y = 2x + 3", "\\boxed{y=3+2x}", 1},
    {"x^2 + y^2 = 25", "\\boxed{x^2+y^2-25=0}", 1},
    {"\\pm 2", "\\boxed{x = \\pm 2}", 1},
    {"-2, 2", "\\boxed{\\pm 2}", 1},
    {"\\text{Monday}", "\\boxed{\\text{Monday}}", 1},
    {"\\text{Monday}", "Monday", 1},
    {"\\text{Monday}", "\\boxed{\\text{Tuesday}}", 0},
    {"1000", "\\boxed{10^3}", 1},
    {"2^{10}", "\\boxed{1024}", 1},
    {"\\binom{5}{2}", "\\boxed{10}", 1},
    {"5!", "\\boxed{120}", 1},
    {"e^2", "\\boxed{\\exp(2)}", 1},
    {"\\log_2 8", "\\boxed{3}", 1},
    {"\\sin(\\pi/6)", "\\boxed{1/2}", 1},
    {"\\frac{\\sqrt{3}}{3}", "\\boxed{\\frac{1}{\\sqrt{3}}}", 1},
    {"0.333", "\\boxed{1/3}", 1},
    {"3", "\\boxed{3}\\boxed{4}", 0},
    {"30^\\circ", "\\boxed{30}", 1},
    {"30", "\\boxed{30°}", 1},
    {"18", "\\boxed{\\$18}", 1},
    {"18", "It costs 18 dollars.", 1},
    {"1,000,000", "\\boxed{10^6}", 1},
    {"0.0001", "\\boxed{10^{-4}}", 1},
    {"0.0001", "\\boxed{1e-4}", 1},
    {"6.02 \\times 10^{23}", "\\boxed{6.02e23}", 1},
    {"(2,3)", "\\boxed{x=2, y=3}", 1},
    {"a=2, b=3", "\\boxed{b=3, a=2}", 1},
    {"\\frac{3}{2}", "\\boxed{1\\frac{1}{2}}", 1},
    {"-1, 3", "The answer is $x=-1$ or $x=3$.", 1},
    {"3", "The answer is $x=3$ or $x=-3$.", 0},
    {"42", "**Answer:** 42", 1},
    {"25", "Counting all cases, there are 25 ways in total.", 1},
    {"1250", "There are 3 cases. In total 1,250 ways.", 1},
    {"9\\pi", "\\boxed{9π}", 1},
    {"\\sqrt{2}", "\\boxed{√2}", 1},
    {"x^2", "\\boxed{x²}", 1},
    {"-\\frac{1}{2}", "\\boxed{\\frac{-1}{2}}", 1},
    {"\\text{(A)}", "A", 1},
    {"4", "\\boxed{4}.", 1},
    {"2", "The two roots are $x_1 = 2$ and $x_2 = 3$, so the smaller is $\\boxed{2}$.", 1},
    {"\\frac{1}{3}", "\\boxed{0.3}", 0},
    {"\\frac{1}{3}", "\\boxed{0.33}", 1},
    {"\\pi", "\\boxed{3.14}", 0},  // a rounded decimal for an irrational gold (lenient: kLenient)
    {"10", "\\boxed{10\\%}", 1},
    {"x \\in [1, 3]", "\\boxed{1 \\le x \\le 3}", 1},
    {"2", "\\boxed{2}\n\nNote: this is approximately 2.0", 1},
    {"\\frac{a+b}{2}", "\\boxed{\\frac{b+a}{2}}", 1},
    {"\\frac{a+b}{2}", "\\boxed{\\frac{a-b}{2}}", 0},
    {"7", "We get 3 + 4 = 7.", 1},
    {"\\infty", "\\boxed{\\infty}", 1},
    {"4", "Final answer: \n\n$$4$$", 1},
    {"4", "$$\n\\boxed{4}\n$$", 1},
    {"1/2", "\\boxed{\\frac{1}{2}} \\text{ or } 0.5", 1},
    {"3\\sqrt{3}", "\\boxed{5.196}", 0},
    {"3\\sqrt{3}", "\\boxed{5.2}", 0},
    {"(3, -2)", "\\boxed{(3,-2)}", 1},
    {"(3, -2)", "\\boxed{(-2,3)}", 0},
    {"\\frac{1}{6}", "\\boxed{\\dfrac16}", 1},
    {"2", "\\boxed{\\sqrt[3]{8}}", 1},
    {"-2", "\\boxed{\\sqrt[3]{-8}}", 1},
    {"x+1", "\\boxed{1+x}", 1},
    {"\\frac{x}{x+1}", "\\boxed{1 - \\frac{1}{x+1}}", 1},
    {"\\tan x", "\\boxed{\\frac{\\sin x}{\\cos x}}", 1},
    {"\\sin^2 x", "\\boxed{1-\\cos^2 x}", 1},
    {"2\\sin x\\cos x", "\\boxed{\\sin 2x}", 1},
    {"10", "$10$ is the answer", 1},
    {"1", "\\boxed{1} \\quad \\text{and that's it}", 1},
    {"8", "So $n = 8$.", 1},
    {"12", "The area is $12 \\text{ cm}^2$.", 1},
    {"12", "The area is $12\\mathrm{~cm}^2$.", 1},
    {"3", "Therefore, $a + b = \\boxed{3}$.", 1},
    {"1", "the answer is: \\boxed{1}.", 1},
    {"1", "the answer is: 2", 0},
    {"5", "the answer is 5\n\nWait, let me double check: 2+3 = 5. Yes.", 1},
    {"-1", "\\boxed{-1}", 1},
    {"\\frac{2}{3}", "2/3", 1},
    {"7", "<think>\\boxed{3}</think>", 0},
    {"3", "<think>so \\boxed{3}</think>", 1},
    {"9", "Answer \\[ 9 \\]", 1},
    {"2", "The values are $1$ and then later $2$", 1},
    {"1,2", "\\boxed{1} and \\boxed{2}", 1},
    {"2", "\\boxed{1} then, after a long detour through other considerations, \\boxed{2}", 1},
    {"1000", "\\boxed{1{,}000}", 1},
    {"1000", "\\boxed{1\\,000}", 1},
    {"1000", "1 000", 1},
    {"1000.5", "1000,5", 1},
    {"0.4", ".4", 1},
    {"2.74", "Le prix : 2,74 €", 1},
    {"1/3", "\\boxed{\\frac13}", 1},
    {"1", "\\boxed{\\frac3{3}}", 1},
    {"\\sqrt{3}", "\\boxed{\\sqrt3}", 1},
    {"\\frac{10}{9}", "$\\frac{1}{2} = \\frac{10}{9}$", 1},
    {"\\frac{1}{3}", "$\\left( \\frac{1}{3} \\right)$", 1},
    {"5", "\\fbox{5}", 1},
    {"\\{1,2,3\\}", "\\boxed{\\{3,2,1\\}}", 1},
    {"\\{1,2,3\\}", "\\boxed{\\{3,2\\}}", 0},
    {"(1,2,3)", "\\boxed{(1,3,2)}", 0},
    {"[0,1) \\cup (2,3]", "\\boxed{(2,3] \\cup [0,1)}", 1},
    {"[0,1) \\cup (2,3]", "\\boxed{[0,1] \\cup (2,3]}", 0},
    {"[0,2]", "\\boxed{[0,1] \\cup [1,2]}", 1},
    {"(-\\infty,0) \\cup (0,\\infty)", "\\boxed{x \\neq 0}", 1},
    {"\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", "\\boxed{\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}}", 1},
    {"\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", "\\boxed{\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}}", 0},
    {"\\begin{pmatrix}1&2\\end{pmatrix}", "\\boxed{\\begin{pmatrix}1\\\\2\\end{pmatrix}}", 0},
    {"x=3", "\\boxed{3}", 1},
    {"x=3", "\\boxed{y=3}", 0},
    {"x=3", "\\boxed{4}", 0},
    {"x > 2", "\\boxed{2 < x}", 1},
    {"x > 2", "\\boxed{x \\ge 2}", 0},
    {"x \\le 5", "\\boxed{-x \\ge -5}", 1},
    {"-1 < x < 3", "\\boxed{(-1,3)}", 1},
    {"-1 < x < 3", "\\boxed{[-1,3)}", 0},
    {"12", "\\boxed{12.0}", 1},
    {"12", "\\boxed{12.01}", 0},
    {"0.125", "\\boxed{\\frac18}", 1},
    {"1/8", "\\boxed{0.12}", 0},
    {"\\frac{2}{3}", "\\boxed{0.667}", 1},
    {"\\frac{2}{3}", "\\boxed{0.666}", 0},
    {"\\frac{2}{3}", "\\boxed{0.6667}", 1},
    {"25\\%", "\\boxed{\\frac14}", 1},
    {"25\\%", "\\boxed{26\\%}", 0},
    {"-5", "\\boxed{5}", 0},
    {"5", "\\boxed{-5}", 0},
    {"2\\frac{1}{3}", "\\boxed{\\frac73}", 1},
    {"1.5 \\times 10^{-3}", "\\boxed{0.0015}", 1},
    {"1.5 \\times 10^{-3}", "\\boxed{0.015}", 0},
    {"(x-1)(x+1)", "\\boxed{x^2-1}", 1},
    {"(x-1)(x+1)", "\\boxed{x^2+1}", 0},
    {"\\frac{1}{x^2-1}", "\\boxed{\\frac{1}{(x-1)(x+1)}}", 1},
    {"e^{i\\pi}", "\\boxed{-1}", 1},
    {"\\ln(xy)", "\\boxed{\\ln x + \\ln y}", 1},
    {"\\ln(x^2)", "\\boxed{2\\ln x}", 1},
    {"\\cos(2x)", "\\boxed{\\cos^2 x - \\sin^2 x}", 1},
    {"\\cos(2x)", "\\boxed{2\\cos^2 x}", 0},
    {"\\sqrt{x^2}", "\\boxed{x}", 1},
    {"\\frac{n(n+1)}{2}", "\\boxed{\\frac{n^2+n}{2}}", 1},
    {"\\frac{n(n+1)}{2}", "\\boxed{\\frac{n^2+1}{2}}", 0},
    {"\\binom{n}{2}", "\\boxed{\\frac{n(n-1)}{2}}", 1},
    {"a^2 b", "\\boxed{b a^2}", 1},
    {"a^2 b", "\\boxed{a b^2}", 0},
    {"2^{n+1}", "\\boxed{2 \\cdot 2^n}", 1},
    {"\\sum_{k=1}^{10} k", "\\boxed{55}", 1},
    {"|x-1|", "\\boxed{|1-x|}", 1},
    {"B", "**B**", 1},
    {"B", "\\boxed{B}", 1},
    {"B", "\\boxed{b}", 1},
    {"B", "\\boxed{A}", 0},
    {"\\text{odd}", "\\boxed{\\text{even}}", 0},
    {"\\text{odd}", "The function is \\boxed{\\text{odd}}.", 1},
    {"\\text{yes}", "\\boxed{\\text{Yes}}", 1},
    {"5", "I could not solve this problem.", 0},
    {"5", "", 0},
    {"5", "\\boxed{}", 0},
    {"5", "\\boxed{5", 1},
    {"15", "\\boxed{15 apples}", 1},
    {"15", "The store has \\boxed{15} apples left.", 1},
    {"5", "\\boxed{\\text{5 cm}}", 1},
    {"(3,4)", "\\boxed{(x,y)=(3,4)}", 1},
    {"\\emptyset", "\\boxed{\\{\\}}", 1},
    {"\\text{no solution}", "\\boxed{\\text{No solution}}", 1},
    {"\\frac{2}{3}", "\\boxed{0.7}", 0},
    {"\\frac{1}{2}", "\\boxed{2^{-1}}", 1},
    {"\\frac{3}{4}", "\\boxed{75\\%}", 1},
    {"\\frac{1}{4}", "\\boxed{\\dfrac{1}{4}\\text{ of the cake}}", 1},
    {"5", "Case 1: \\boxed{3}. Case 2: \\boxed{5}.", 1},
    {"1, 2, 3", "\\boxed{1}, \\boxed{2}, \\boxed{3}", 1},
    {"-\\infty", "\\boxed{-∞}", 1},
    {"\\infty", "\\boxed{+\\infty}", 1},
    {"3", "The answer is: **3**", 1},
    {"3", "**Answer: 3**", 1},
    {"x \\ge 3", "\\boxed{[3, \\infty)}", 1},
    {"(-\\infty, -2] \\cup [2, \\infty)", "\\boxed{|x| \\ge 2}", 1},
    {"\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{\\sqrt2}2}", 1},
    {"2", "\\boxed{\\text{2}}", 1},
    {"10", "\\boxed{10 \\mathrm{~m}}", 1},
    {"3", "\\boxed{x=3 \\text{ and } y = 4}", 0},
    {"\\frac{7}{3}", "\\boxed{2 \\frac{1}{3}}", 1},
    {"1", "\\boxed{\\cos^2\\theta+\\sin^2\\theta}", 1},
    {"2\\pi", "\\boxed{6.28}", 0},
    {"2\\pi", "\\boxed{6.2832}", 0},
    {"2\\pi", "\\boxed{6.3}", 0},
    {"15", "$15$ students", 1},
    {"k=5", "\\boxed{5}", 1},
    {"\\$25", "\\boxed{25}", 1},
    {"25", "\\boxed{\\$25.00}", 1},
    {"\\frac{9}{2}", "\\boxed{4\\tfrac{1}{2}}", 1},
    {"(1, -1)", "\\boxed{(1,-1)} and also \\boxed{(-1, 1)}", 0},
    {"3", "<think>\n...\n</think>\n\n**Final Answer**\n\n\\[\n\\boxed{3}\n\\]", 1},
    {"2", "$x^2 - 4 = 0 \\implies x = 2$", 1},
    {"7", "x = 7", 1},
    {"\\sqrt{3}", "\\boxed{1.732}", 0},
    {"\\sqrt{3}", "\\boxed{1.73}", 0},
    {"\\sqrt{3}", "\\boxed{1.7}", 0},
    {"0.5", "\\boxed{\\frac{1}{2}}", 1},
    {"12", "\\boxed{12\\,\\text{cm}^2}", 1},
    {"E", "The answer is $\\boxed{E}$", 1},
    {"E", "The answer is $\\boxed{e}$", 1},
    {"e", "\\boxed{e}", 1},
    {"e", "\\boxed{2.718}", 0},
    {"5", "\\boxed{5}\\quad\\text{(since }x>0)", 1},
    {"a+b", "\\boxed{b+a}", 1},
    {"0,111", "0.111", 1},
    {"1/3", "$\\frac{1}{3} \\textbf{meters}$", 1},
    {"14916", "Final Answer: The final answer is $14 {, }916$. I hope it is correct.", 1},
    {"204_5", "for a quotient of $\\boxed{204_5}$. Note that $13_5$ divided by $2_5$ is $4_5$.", 1},
    {"12", "For each divisor $n$ there is one $d = \\frac{90}{n}$. Therefore, there are 12 distinct sequences. I hope it is correct.", 1},
    {"120", "the volume is $5 \\times 6 \\times 4 = 120$. Final Answer: The volume of $ABCDEFGH$ is 120. I hope it is correct.", 1},
    {"10455", "so the interest is $\\boxed{255}$. So he has $10,455. Final Answer: The final answer is $10,455$. I hope it is correct.", 1},
    {"100\\%", "$$\\frac{\\Delta x'}{\\Delta x} \\geq 2.$$ Therefore, the error increases by 100%.", 1},
    {"\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", "$\\frac{1}{\\sqrt{6}}$", 1},
    {"p=5,q=2;p=7,q=2", "$(5,2),(7,2)$", 1},
    {"p=5,q=2;p=7,q=2", "$(5,2),(7,3)$", 0},
    {"(3, 3), (1, 1)", "$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}$$", 1},
    {"2/3", "So, P(A) = (1/2) * (4/3) P(A) = 2/3 Therefore, the probability is 2/3. <|im_start|>user", 1},
    {"5", "So \\boxed{5}. To verify the answer is correct, 2+3 = 5", 1},
    {"5", "Check if the answer is correct: 2+3=5. So the result is 5.", 1},
    {"7", "So \\boxed{7}. Let me double-check: the answer is consistent with 2 + 5.", 1},
    {"4", "\\boxed{12 \\div 3}", 1},
    {"4", "\\boxed{12 \\div 4}", 0},
    {"\\pi", "\\boxed{\\mathrm{\\pi}}", 1},
    {"e^{2}", "\\boxed{\\mathrm{e}^2}", 1},
    {"2", "\\boxed{\\mathrm{2}}", 1},
    {"(-\\infty, 1) \\cup (1, \\infty)", "\\boxed{\\mathbb{R} \\setminus \\{1\\}}", 1},
    {"(-\\infty, 1) \\cup (1, \\infty)", "\\boxed{\\mathbb{R} \\setminus \\{2\\}}", 0},
    {"(-\\infty, \\infty)", "\\boxed{\\mathbb{R}}", 1},
    {"(-\\infty, \\infty)", "\\boxed{\\text{all real numbers}}", 1},
    {"\\mathbb{R}", "\\boxed{(-\\infty,\\infty)}", 1},
    {"(-\\infty,-2)\\cup(-2,3)\\cup(3,\\infty)", "\\boxed{\\mathbb{R}\\setminus\\{3,-2\\}}", 1},
    {"R", "\\boxed{R}", 1},
    {"2R", "\\boxed{R+R}", 1},
    // the final answer wins: a self-correction after the last "answer is" restates it
    {"2", "The answer is 2. Wait, actually no, it is 4.", 0},
    {"4", "The answer is 2. Wait, actually no, it is 4.", 1},
    {"4", "The answer is 2. Sorry, the answer should be $4$.", 1},
    {"7", "The answer is 5. Oops, I made a mistake: it is $7$.", 1},
    {"12", "The answer is 12. Actually, this is the number of ways.", 1},
    {"12", "The answer is 12. No, wait: 12 is right since 3*4 = 12", 1},
    {"4", "First \\boxed{2}. Hmm, actually no, the last box decides: \\boxed{4}", 1},
    // a percent sign on anything but a number literal is its value (1/2 % = 0.005)
    {"0.5", "\\boxed{\\frac{1}{2}\\%}", 0},
    {"\\frac{1}{2}", "\\boxed{\\frac{1}{2}\\%}", 0},
    {"0.005", "\\boxed{\\frac{1}{2}\\%}", 1},
    {"\\frac{1}{2}\\%", "\\boxed{0.5}", 0},
    {"0.5", "\\boxed{50\\%}", 1},
    // order from the gold's form: a bare list or tuple is ordered; a set, and/or, "x = a, b", +- are not
    {"1,2,3", "\\boxed{3,1,2}", 0},
    {"2, -3", "$x=-3 \\text{ or } x=2$", 0},
    {"2, -3", "$x=2 \\text{ or } x=-3$", 1},
    {"2 \\text{ or } -3", "$x=-3 \\text{ or } x=2$", 1},
    {"x = 2, -3", "$x=-3 \\text{ or } x=2$", 1},
    {"x = 2, x = -3", "\\boxed{-3, 2}", 1},
    {"\\{2, -3\\}", "\\boxed{-3, 2}", 1},
    {"(2, -3)", "\\boxed{-3 \\text{ and } 2}", 0},
    {"(2, -3)", "\\boxed{2 \\text{ and } -3}", 1},
    // a rounded decimal for an exact irrational gold is wrong by default (kLenient accepts it)
    {"\\sqrt{2}", "\\boxed{1.414}", 0},
    {"\\frac{\\pi}{4}", "\\boxed{0.785}", 0},
    {"\\sin(\\pi/6)", "\\boxed{0.5}", 1},  // a decimal equal to the value is exact
    {"\\log_2 8", "\\boxed{3.0}", 1},
    {"3.14", "\\boxed{\\pi}", 1},  // a decimal gold states the precision asked for
    // units: one unit in any spelling; two different named units differ
    {"5 meters", "5 m", 1},
    {"5 \\text{ meters}", "\\boxed{5 \\text{ m}}", 1},
    {"5 \\text{ m}", "\\boxed{5 \\text{ metres}}", 1},
    {"5 m", "\\boxed{5 \\text{ meters}}", 1},
    {"12 \\text{ cm}^2", "\\boxed{12 \\text{ square centimeters}}", 1},
    {"3 \\text{ hours}", "\\boxed{3 \\text{ hrs}}", 1},
    {"5 meters", "\\boxed{5 \\text{ cm}}", 0},
    {"5 \\text{ m}", "\\boxed{500 \\text{ cm}}", 0},
    {"5", "\\boxed{5 m}", 0},  // without a unit in the gold, m is a variable
    // angles: degrees against radians when one side is marked in degrees
    {"90^\\circ", "\\boxed{\\frac{\\pi}{2}}", 1},
    {"\\frac{\\pi}{2}", "\\boxed{90^\\circ}", 1},
    {"\\frac{\\pi}{3}", "\\boxed{60°}", 1},
    {"\\frac{\\pi}{4}", "\\boxed{45 \\text{ degrees}}", 1},
    {"60 degrees", "\\boxed{\\frac{\\pi}{3}}", 1},
    {"\\frac{\\pi}{2}", "\\boxed{90}", 0},
    {"90^\\circ", "\\boxed{\\frac{\\pi}{3}}", 0},
    {"45^\\circ", "\\boxed{0.785}", 0},
    // trigonometric functions of degree arguments
    {"\\sin 30^\\circ", "\\boxed{\\frac12}", 1},
    {"\\frac12", "\\boxed{\\sin 30^\\circ}", 1},
    {"\\frac{\\sqrt3}{2}", "\\boxed{\\cos 30°}", 1},
    {"1", "\\boxed{\\tan(45^{\\circ})}", 1},
    {"\\frac12", "\\boxed{\\sin 30}", 0},  // 30 radians
    // repeating decimals
    {"\\frac16", "\\boxed{0.1\\overline{6}}", 1},
    {"0.1\\overline{6}", "\\boxed{\\frac{1}{6}}", 1},
    {"\\frac13", "\\boxed{0.\\overline{3}}", 1},
    {"\\frac{1}{7}", "\\boxed{0.\\overline{142857}}", 1},
    {"\\frac{37}{30}", "\\boxed{1.2\\overline{3}}", 1},
    {"1", "\\boxed{0.\\bar{9}}", 1},
    {"\\frac16", "\\boxed{0.1\\overline{7}}", 0},
    {"\\frac16", "\\boxed{0.16}", 0},
};

// Under math_opts_t.lenient_decimals: a decimal for an irrational gold is right within the
// precision it is printed with (at least 2 decimals or 3 significant digits).
static const case_t kLenient[] = {
    {"\\pi", "\\boxed{3.14}", 1},
    {"\\sqrt{2}", "\\boxed{1.414}", 1},
    {"3\\sqrt{3}", "\\boxed{5.196}", 1},
    {"2\\pi", "\\boxed{6.2832}", 1},
    {"e", "\\boxed{2.718}", 1},
    {"45^\\circ", "\\boxed{0.785}", 1},
    {"\\sqrt{3}", "\\boxed{1.7}", 0},
    {"\\pi", "\\boxed{3.15}", 0},
    {"2\\pi", "\\boxed{6.3}", 0},
};

static void check_case(const char *gold, const char *resp, int expected, const char *label) {
    verdict_t v;
    math_opts_t o = math_opts_default;
    o.lenient_decimals = !strcmp(label, "lenient");
    int rc = math_verify_opts(gold, resp, &o, &v);
    test_check(rc == 0 && v.correct == expected, "%s: gold=%s | response=%.120s | expected %d got %d | extracted=%s | %s", label, gold,
               resp, expected, v.correct, v.extracted, v.reason);
}

static void check_extract(const char *resp, const char *want) {
    char buf[512];
    math_extract_answer(resp, buf, sizeof buf);
    test_check(!strcmp(buf, want), "extract(%.80s) = '%s', want '%s'", resp, buf, want);
}

// A pathological input: must return a verdict (the expected one) without crashing; prints its time.
static void check_pathological(const char *name, const char *gold, const char *resp, int expected) {
    verdict_t v;
    double t0 = cispo_now();
    int rc = math_verify(gold, resp, &v);
    double ms = 1e3 * (cispo_now() - t0);
    printf("pathological %-28s -> %d in %8.3f ms (%s)\n", name, v.correct, ms, v.reason);
    test_check(rc == 0 && v.correct == expected, "pathological %s: expected %d got %d (%s)", name, expected, v.correct, v.reason);
}

static char *repeat(const char *prefix, const char *unit, size_t times, const char *suffix) {
    size_t np = strlen(prefix), nu = strlen(unit), ns = strlen(suffix);
    char *s = cispo_malloc(np + nu * times + ns + 1), *w = s;
    memcpy(w, prefix, np);
    w += np;
    for (size_t i = 0; i < times; i++, w += nu) memcpy(w, unit, nu);
    memcpy(w, suffix, ns + 1);
    return s;
}

int main(void) {
    // ---- table of realistic responses and near misses ----
    for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; i++) check_case(kCases[i].gold, kCases[i].response, kCases[i].expected, "case");
    for (size_t i = 0; i < sizeof kLenient / sizeof kLenient[0]; i++)
        check_case(kLenient[i].gold, kLenient[i].response, kLenient[i].expected, "lenient");

    // ---- extraction ----
    check_extract("<think>\\boxed{1}</think>The answer is $\\boxed{2}$.", "2");
    check_extract("We get \\boxed{\\frac{1}{2}} and so on", "\\frac{1}{2}");
    check_extract("The final answer is $7$. I hope it is correct.", "7");
    check_extract("so $a=1$ and finally $b = 4$.", "b = 4");
    check_extract("She has 1,250 apples.", "1250");
    check_extract("\\boxed{1} and \\boxed{2}", "1 \\text{ and } 2");
    check_extract("no numbers here", "");

    // ---- options ----
    {
        math_opts_t o = math_opts_default;
        verdict_t v;
        math_verify_opts("$x \\in [-2,7]$", "$-2 \\le x \\le 7$", &o, &v);
        test_check(v.correct == 1, "set vs relation allowed by default");
        o.set_relation = 0;
        math_verify_opts("$x \\in [-2,7]$", "$-2 \\le x \\le 7$", &o, &v);
        test_check(v.correct == 0, "set vs relation refused with set_relation = 0");
        math_verify_opts("$-2 \\le x \\le 7$", "$x \\in [-2,7]$", &o, &v);
        test_check(v.correct == 1, "a gold relation still matches its set");
        o = math_opts_default;
        math_verify_opts("f(x)", "f(y)", &o, &v);
        test_check(v.correct == 0, "strict: f(x) != f(y)");
        o.strict = 0;
        math_verify_opts("f(x)", "f(y)", &o, &v);
        test_check(v.correct == 1, "non-strict: f(x) = f(y)");
        test_check(math_verify(NULL, "1", &v) == -1 && v.failed, "NULL gold is a failed verdict");
    }

    // ---- pathological inputs: verdict and termination ----
    check_pathological("10^{10^{10}} equal", "10^{10^{10}}", "\\boxed{10^{10^{10}}}", 1);
    check_pathological("10^{10^{10}} vs 10", "10", "\\boxed{10^{10^{10}}}", 0);
    check_pathological("10^{10^{10}}+1", "10^{10^{10}}", "\\boxed{10^{10^{10}}+1}", 0);
    check_pathological("1000! equal", "1000!", "\\boxed{1000 \\cdot 999!}", 1);
    check_pathological("1000! vs 1001!", "1000!", "\\boxed{1001!}", 0);
    check_pathological("(10^9)!", "5", "\\boxed{(10^{9})!}", 0);
    check_pathological("2^2^2^2^2^2^2", "2", "\\boxed{2^{2^{2^{2^{2^{2^{2}}}}}}}", 0);
    check_pathological("sum to 10^9", "2", "\\boxed{\\sum_{k=1}^{1000000000} k}", 0);
    check_pathological("binom(10^9, 10^8)", "2", "\\boxed{\\binom{1000000000}{100000000}}", 0);
    check_pathological("tan(3333322!)", "333 \\tan 3333322!", "\\boxed{333 \\tan 3333322!}", 1);
    check_pathological("sin(10^{100}) vs 0", "0", "\\boxed{\\sin(10^{100})}", 0);
    check_pathological("e^{i 10^{30}}", "1", "\\boxed{e^{i \\cdot 10^{30}}}", 0);
    // fuzzer-found: nested sums (work budget), tan of a huge factorial, sinh of a value near 2^-10^7
    check_pathological("fuzz: nested sums", "1", "\\sum_{k=1}^62 8 \\sum_{k=1}^62 8 \\sum_{k=1}^62 8 \\sum_{k=1}^62 8", 0);
    check_pathological("fuzz: sinh of tiny", "Nchin^N\\sin^3 N2 N\\m_n^2\xff" "6997757in999999", "2", 0);
    {
        char *s = repeat("\\boxed{", "{", 10000, "");
        char *t = repeat(s, "}", 10000, "}");
        char *u = repeat("", "", 0, "");
        size_t n = strlen(t);
        char *mid = cispo_malloc(n + 2);
        memcpy(mid, t, 7 + 10000);  // "\boxed{" + braces
        mid[7 + 10000] = '7';
        memcpy(mid + 7 + 10000 + 1, t + 7 + 10000, n - 7 - 10000 + 1);
        check_pathological("10,000 nested braces", "7", mid, 0);  // too deep: wrong, not another reading
        free(s), free(t), free(u), free(mid);
    }
    {
        char *s = repeat("$", "(", 10000, "1");
        char *t = repeat(s, ")", 10000, "$");
        check_pathological("10,000 nested parens", "1", t, 0);
        free(s), free(t);
    }
    {
        char *s = repeat("\\boxed{", "\\sqrt{", 5000, "2");
        char *t = repeat(s, "}", 5001, "");
        check_pathological("5,000 nested sqrt", "2", t, 0);
        free(s), free(t);
    }
    {
        char *s = repeat("\\boxed{", "1+", 3000, "1}");
        check_pathological("3,001-term sum", "3001", s, 0);
        free(s);
    }
    {
        char *s = repeat("", "Let me think about this step by step. ", 1 << 20 >> 5, "So the answer is \\boxed{42}.");
        printf("(1 MB response: %zu bytes)\n", strlen(s));
        check_pathological("1 MB response, boxed at end", "42", s, 1);
        free(s);
    }
    {
        char *s = repeat("", "$x$ and ", 1 << 17, "$3$");
        check_pathological("1 MB of LaTeX spans", "3", s, 0);
        free(s);
    }
    {
        char *s = repeat("", "1, ", 350000, "");
        check_pathological("1 MB of numbers", "1", s, 1);
        free(s);
    }
    {
        char *s = repeat("\\boxed{", "(", 200000, "");
        check_pathological("unbalanced 200k", "1", s, 0);
        free(s);
    }
    return test_finish("test_math_cases");
}
